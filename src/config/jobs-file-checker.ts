/**
 * The jobs-file checker: the file's top level and each job. Inbox rules are checked by
 * src/config/inbox-rules-checker.ts, calendar rules by src/config/calendar-rules-schema.ts; both report
 * through this checker's tools, so every problem carries the same line, key path and fix.
 */
import nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import cron from 'node-cron';
import { ACTION_NAMES } from '../jobs/rules/actions/index.ts';
import { KEY_NAMES } from '../jobs/rules/keys/index.ts';
import { SUBJECT_MATCHES_FLAGS } from '../jobs/rules/keys/subject-matches.ts';
import { CALENDAR_JOB_KEYS, checkCalendarRulesJob, type CheckTools } from './calendar-rules-schema.ts';
import { describe, folderPathProblem, formatPath, isObject, suggest, type Obj, type Segment } from './check-helpers.ts';
import { checkInboxRules } from './inbox-rules-checker.ts';
import { README, type JobsFileProblem } from './jobs-file-error.ts';
import type { Locate, Where } from './jobs-file-parse.ts';
import type { JobSpec, JobsFile } from './jobs-file.ts';

export const JOB_TYPES = ['inbox-rules', 'agenda-digest', 'calendar-rules', 'custom'] as const;
const TOP_KEYS = ['timezone', 'jobs'];
const COMMON_JOB_KEYS = ['name', 'type', 'schedule'];
const JOB_KEYS: Record<(typeof JOB_TYPES)[number], string[]> = {
  'inbox-rules': [...COMMON_JOB_KEYS, 'folder', 'backfill', 'rules'],
  'agenda-digest': [...COMMON_JOB_KEYS, 'sendTo'],
  'calendar-rules': [...COMMON_JOB_KEYS, ...CALENDAR_JOB_KEYS],
  custom: [...COMMON_JOB_KEYS, 'module', 'options'],
};
const ALL_JOB_KEYS = [...new Set(Object.values(JOB_KEYS).flat())];
/** Job names appear in `run <job>`, in `/api/jobs/:name/run` and in store keys. */
const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class Checker {
  readonly problems: JobsFileProblem[] = [];
  /** The file's `timezone:` once read (inbox rules' snooze times are in it). */
  private timezone: string | undefined;

  constructor(
    private readonly path: string,
    private readonly locate: Locate,
  ) {}

  private add(segments: Segment[], message: string, where: Where = 'value'): void {
    this.problems.push({ ...this.locate(segments, where), key: formatPath(segments), message });
  }

  /** Reports every key of `obj` not in `allowed`, with a hint from `elsewhere` or the closest allowed key. */
  private unknownKeys(obj: Obj, at: Segment[], allowed: readonly string[], what: string, elsewhere: (key: string) => string | undefined = () => undefined): void {
    for (const key of Object.keys(obj)) {
      if (allowed.includes(key)) continue;
      const close = suggest(key, allowed);
      const fix =
        elsewhere(key) ??
        (close ? `did you mean "${close}"?` : `remove it; ${what} takes only ${allowed.map((k) => `"${k}"`).join(', ')}.`);
      this.add([...at, key], `unknown key "${key}" in ${what}. Fix: ${fix}`, 'key');
    }
  }

  file(value: unknown): JobsFile | undefined {
    const abs = nodePath.resolve(this.path);
    if (value === null || value === undefined) {
      this.add([], `the file is empty. Fix: add a jobs: list; see the example agent.config.yaml and ${README}.`);
      return undefined;
    }
    if (!isObject(value)) {
      this.add([], `the file must be a mapping with a jobs: list, but it is ${describe(value)}. Fix: start the file with "jobs:" (see ${README}).`);
      return undefined;
    }
    this.unknownKeys(value, [], TOP_KEYS, 'the top level of the jobs file', (key) =>
      ALL_JOB_KEYS.includes(key) || key === 'rules' ? `"${key}" belongs to a job: indent it under an item of jobs:.` : undefined,
    );
    let timezone: string | undefined;
    if (value.timezone !== undefined) {
      if (typeof value.timezone !== 'string' || value.timezone.trim() === '') {
        this.add(['timezone'], `timezone must be an IANA time zone name, but it is ${describe(value.timezone)}. Fix: write e.g. timezone: Europe/Berlin, or remove it to use the mailbox's own setting.`);
      } else {
        try {
          timezone = new Intl.DateTimeFormat(undefined, { timeZone: value.timezone }).resolvedOptions().timeZone;
          this.timezone = timezone;
        } catch {
          this.add(['timezone'], `unknown time zone ${JSON.stringify(value.timezone)}. Fix: use an IANA name such as Europe/Berlin, America/New_York or UTC, or remove the key to use the mailbox's own setting.`);
        }
      }
    }
    const jobs: JobSpec[] = [];
    if (!('jobs' in value)) {
      this.add([], `the file has no jobs: list. Fix: add one; see the example agent.config.yaml and ${README}.`);
    } else if (!Array.isArray(value.jobs)) {
      this.add(['jobs'], `jobs must be a list (each item starts with "- "), but it is ${describe(value.jobs)}. Fix: write jobs:\\n  - name: triage\\n    type: inbox-rules …`);
    } else {
      const firstIndex = new Map<string, number>();
      value.jobs.forEach((raw, index) => {
        const job = this.job(raw, ['jobs', index], abs);
        const name = isObject(raw) && typeof raw.name === 'string' ? raw.name : undefined;
        if (name !== undefined) {
          const first = firstIndex.get(name);
          if (first === undefined) firstIndex.set(name, index);
          else {
            const firstLine = this.locate(['jobs', first, 'name'], 'value').line;
            this.add(['jobs', index, 'name'], `duplicate job name "${name}" (also jobs[${first}]${firstLine ? `, line ${firstLine}` : ''}). Fix: give each job its own name; \`run <job>\` and the status page find jobs by name.`);
          }
        }
        if (job) jobs.push(job);
      });
    }
    return { path: abs, ...(timezone !== undefined ? { timezone } : {}), jobs };
  }

  private job(raw: unknown, at: Segment[], fileAbs: string): JobSpec | undefined {
    if (!isObject(raw)) {
      this.add(at, `a job must be a mapping (name:, type:, schedule: …), but it is ${describe(raw)}. Fix: see the example in ${README}.`);
      return undefined;
    }
    const before = this.problems.length;
    const name = this.jobName(raw, at);
    let type: JobSpec['type'] | undefined;
    if (raw.type === undefined) {
      if (raw.module !== undefined) type = 'custom';
      else {
        this.add(at, `the job has neither type nor module. Fix: add "type: inbox-rules" or "type: agenda-digest", or "module: ./jobs/my-job.js" for a job of your own.`);
      }
    } else if (typeof raw.type === 'string' && (JOB_TYPES as readonly string[]).includes(raw.type)) {
      type = raw.type as JobSpec['type'];
    } else {
      const close = typeof raw.type === 'string' ? suggest(raw.type, JOB_TYPES) : undefined;
      this.add([...at, 'type'], `unknown job type ${JSON.stringify(raw.type)}. Fix: ${close ? `did you mean "${close}"? ` : ''}type is one of ${JOB_TYPES.join(', ')} (or leave it out and give module: for a job of your own).`);
    }
    const schedule = this.schedule(raw, at);

    if (type === undefined) {
      this.unknownKeys(raw, at, ALL_JOB_KEYS, 'a job');
      return undefined;
    }
    this.unknownKeys(raw, at, JOB_KEYS[type], `a ${type} job`, (key) => {
      const owner = JOB_TYPES.find((t) => JOB_KEYS[t].includes(key));
      if (owner) return `"${key}" is only for ${owner} jobs; remove it${key === 'module' ? ' or drop type: to make this a custom job' : ''}.`;
      if ((KEY_NAMES as readonly string[]).includes(key) || (ACTION_NAMES as readonly string[]).includes(key)) {
        return `"${key}" belongs to a rule: put it under rules: → match: or actions:.`;
      }
      return undefined;
    });

    let job: JobSpec | undefined;
    if (type === 'inbox-rules') {
      const folder = this.folder(raw, at);
      const backfill = this.boolean(raw, at, 'backfill', false, 'true (act on mail already in the folder on the first run) or false (only new mail)');
      const rules = checkInboxRules(raw, at, { ...this.tools(), locate: this.locate, timezone: this.timezone, resolvePath: (p) => nodePath.resolve(nodePath.dirname(fileAbs), p) });
      if (name !== undefined && schedule !== undefined && rules !== undefined) {
        job = { name, type, schedule, folder, backfill, rules };
      }
    } else if (type === 'calendar-rules') {
      job = checkCalendarRulesJob(raw, at, { name, schedule }, this.tools());
    } else if (type === 'agenda-digest') {
      let sendTo = 'me';
      if (raw.sendTo !== undefined) {
        if (typeof raw.sendTo !== 'string' || raw.sendTo.trim() === '') {
          this.add([...at, 'sendTo'], `sendTo must be text, but it is ${describe(raw.sendTo)}. Fix: write "me", an email address, a file path or a webhook URL.`);
        } else sendTo = raw.sendTo.trim();
      }
      if (name !== undefined && schedule !== undefined) job = { name, type, schedule, sendTo };
    } else {
      let modulePath: string | undefined;
      if (typeof raw.module !== 'string' || raw.module.trim() === '') {
        this.add(raw.module === undefined ? at : [...at, 'module'], `a custom job needs module: the path of a JavaScript module that exports { run(ctx) }. Fix: add e.g. module: ./jobs/my-job.js (relative to this file's folder).`);
      } else {
        const spec = raw.module.trim();
        try {
          modulePath = spec.startsWith('file:') ? fileURLToPath(spec) : nodePath.resolve(nodePath.dirname(fileAbs), spec);
        } catch (error) {
          this.add([...at, 'module'], `module ${JSON.stringify(spec)} is not a usable file URL (${(error as Error).message}). Fix: write a path relative to this file's folder, e.g. ./jobs/my-job.js.`);
        }
        // Anything else would be imported as code anyway, and a syntax error would copy its first line into the log.
        if (modulePath !== undefined && !/\.[cm]?[jt]s$/i.test(modulePath)) {
          this.add([...at, 'module'], `module ${JSON.stringify(spec)} is not a JavaScript or TypeScript file (.js, .mjs, .cjs, .ts, .mts, .cts). Fix: point module: at the job's own module, e.g. ./jobs/my-job.js.`);
          modulePath = undefined;
        }
      }
      let options: Record<string, unknown> | undefined;
      if (raw.options !== undefined) {
        if (!isObject(raw.options)) {
          this.add([...at, 'options'], `options must be a mapping (key: value pairs handed to the job), but it is ${describe(raw.options)}. Fix: write options: { key: value } or remove it.`);
        } else options = raw.options;
      }
      if (name !== undefined && schedule !== undefined && modulePath !== undefined) {
        job = { name, type: 'custom', module: modulePath, schedule, ...(options ? { options } : {}) };
      }
    }
    return this.problems.length === before ? job : undefined;
  }

  /** This checker's helpers, lent to the calendar-rules schema (src/config/calendar-rules-schema.ts). */
  private tools(): CheckTools {
    return {
      add: (at, message, where) => this.add(at, message, where), unknownKeys: (...a) => this.unknownKeys(...a), textList: (...a) => this.textList(...a),
      boolean: (...a) => this.boolean(...a), suggest, describe, regexFlags: SUBJECT_MATCHES_FLAGS, problemCount: () => this.problems.length,
    };
  }

  private jobName(raw: Obj, at: Segment[]): string | undefined {
    if (raw.name === undefined) {
      this.add(at, `the job has no name. Fix: add name: (letters, digits, ".", "_", "-"), e.g. name: triage.`);
      return undefined;
    }
    if (typeof raw.name !== 'string' || !JOB_NAME.test(raw.name)) {
      this.add([...at, 'name'], `job name ${JSON.stringify(raw.name)} is not allowed: a job name is 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit, because it is used in \`run <job>\` and in URLs. Fix: e.g. name: ${typeof raw.name === 'string' ? slug(raw.name) : 'triage'}.`);
      return undefined;
    }
    return raw.name;
  }

  private schedule(raw: Obj, at: Segment[]): string | undefined {
    const s = raw.schedule;
    if (s === undefined) {
      this.add(at, `the job has no schedule. Fix: add a cron expression, e.g. schedule: "*/5 * * * *" (every 5 minutes).`);
      return undefined;
    }
    if (typeof s !== 'string') {
      this.add([...at, 'schedule'], `schedule must be a cron expression in quotes, but it is ${describe(s)}. Fix: e.g. schedule: "0 7 * * 1-5".`);
      return undefined;
    }
    const expr = s.trim().replace(/\s+/g, ' ');
    const result = cron.validateDetailed(expr);
    if (!result.valid) {
      const reasons = result.errors.map((e) => e.message).join('; ');
      this.add([...at, 'schedule'], `${JSON.stringify(s)} is not a valid cron expression (${reasons || 'rejected by node-cron'}). Fix: use 5 fields "minute hour day-of-month month day-of-week" (or 6 with seconds first), e.g. "*/5 * * * *" or "0 7 * * 1-5".`);
      return undefined;
    }
    return expr;
  }

  private folder(raw: Obj, at: Segment[]): string {
    if (raw.folder === undefined) return 'inbox';
    if (typeof raw.folder !== 'string') {
      this.add([...at, 'folder'], `folder must be a well-known folder name or a folder path, but it is ${describe(raw.folder)}. Fix: e.g. folder: inbox or folder: Projects/Alpha.`);
      return 'inbox';
    }
    const problem = folderPathProblem(raw.folder);
    if (problem) {
      this.add([...at, 'folder'], `${problem}. Fix: write a well-known name (inbox, archive, …) or a path from the mailbox root such as Projects/Alpha, or remove folder: for the inbox.`);
    }
    return raw.folder;
  }

  private boolean(raw: Obj, at: Segment[], key: string, fallback: boolean, meaning: string): boolean {
    const v = raw[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') {
      this.add([...at, key], `${key} must be true or false, but it is ${describe(v)}. Fix: write ${key}: ${meaning}.`);
      return fallback;
    }
    return v;
  }

  /** A string or a non-empty list of non-empty strings. */
  private textList(v: unknown, at: Segment[], key: string): string[] | undefined {
    const list = Array.isArray(v) ? v : [v];
    if (Array.isArray(v) && v.length === 0) {
      this.add(at, `${key} is an empty list, which matches nothing. Fix: give at least one value, or remove ${key}.`);
      return undefined;
    }
    let ok = true;
    list.forEach((s, i) => {
      const p = Array.isArray(v) ? [...at, i] : at;
      if (typeof s !== 'string') {
        const quoted = typeof s === 'number' || typeof s === 'boolean' ? `; put it in quotes: "${String(s)}"` : '';
        this.add(p, `${key} takes text or a list of texts, but this is ${describe(s)}. Fix: write it as text${quoted}.`);
        ok = false;
      } else if (s.trim() === '') {
        this.add(p, `${key} is empty text, which would match everything or nothing. Fix: give a value or remove ${key}.`);
        ok = false;
      }
    });
    return ok ? (list as string[]) : undefined;
  }
}

function slug(s: string): string {
  const out = s.trim().toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[-._]+|-+$/g, '').slice(0, 64);
  return out || 'triage';
}
