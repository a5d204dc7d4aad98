/**
 * The jobs file (`agent.config.yaml`, or `.json`): parsing and validation.
 *
 * A bad file is refused with every problem at once, each with its line, its key
 * path (`jobs[0].rules[1].match.subjectMatches`) and a fix. The validator is
 * written by hand rather than with zod because every message here is custom
 * ("did you mean", "this key belongs under match:", cron and regex reasons) and
 * zod's union errors would have to be rewritten one by one anyway.
 *
 * Line numbers: YAML is parsed with `yaml`'s Document + LineCounter and every
 * problem is located by walking the document to its key path. JSON is parsed
 * with `JSON.parse` (strict) and, since JSON is YAML, located the same way.
 */
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import cron from 'node-cron';
import { Document, LineCounter, parseDocument, isMap, isScalar, isSeq } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import { AgentError } from './errors.ts';
import { CALENDAR_JOB_KEYS, checkCalendarRulesJob, type CalendarRulesJob, type CheckTools } from './calendar-rules-schema.ts';

export type Importance = 'low' | 'normal' | 'high';

export type MatchSpec = {
  from?: string | string[];
  fromDomain?: string | string[];
  to?: string | string[];
  cc?: string | string[];
  subjectContains?: string | string[];
  subjectMatches?: string | string[];
  bodyContains?: string | string[];
  hasAttachments?: boolean;
  importance?: Importance | Importance[];
  isRead?: boolean;
  categories?: string | string[];
  olderThanDays?: number;
  any?: MatchSpec[];
};

export type Action =
  | { moveTo: string }
  | { copyTo: string }
  | { markRead: boolean }
  | { flag: boolean }
  | { categorize: string[] }
  | { setImportance: Importance }
  | { forwardTo: string | string[] }
  | { delete: true }
  | { webhook: string };

export interface Rule {
  name: string;
  match: MatchSpec;
  actions: Action[];
  stop: boolean;
}

export interface InboxRulesJob {
  name: string;
  type: 'inbox-rules';
  schedule: string;
  folder: string;
  backfill: boolean;
  rules: Rule[];
}

export interface AgendaDigestJob {
  name: string;
  type: 'agenda-digest';
  schedule: string;
  sendTo: string;
}

export interface CustomJob {
  name: string;
  type: 'custom';
  /** Absolute path, resolved against the jobs file's directory. */
  module: string;
  schedule: string;
  options?: Record<string, unknown>;
}

export type JobSpec = InboxRulesJob | AgendaDigestJob | CalendarRulesJob | CustomJob;
export type { CalendarRulesJob } from './calendar-rules-schema.ts';

export interface JobsFile {
  /** Absolute path of the file. */
  path: string;
  /** Canonical IANA name (`europe/berlin` becomes `Europe/Berlin`). */
  timezone?: string;
  jobs: JobSpec[];
}

export interface JobsFileProblem {
  line?: number;
  column?: number;
  /** Key path such as `jobs[0].rules[1].match.subjectMatches`; '' for the file as a whole. */
  key: string;
  /** What is wrong, then `Fix: …`. */
  message: string;
}

/**
 * `subjectMatches` is compiled with these flags: case-insensitive, as every text
 * comparison of the rule engine is. No `u` flag, so patterns such as `\-` that
 * people write by habit stay valid.
 */
export const SUBJECT_MATCHES_FLAGS = 'i';

export const JOB_TYPES = ['inbox-rules', 'agenda-digest', 'calendar-rules', 'custom'] as const;
export const MATCH_KEYS = [
  'from', 'fromDomain', 'to', 'cc', 'subjectContains', 'subjectMatches', 'bodyContains',
  'hasAttachments', 'importance', 'isRead', 'categories', 'olderThanDays', 'any',
] as const;
export const ACTION_KEYS = [
  'moveTo', 'copyTo', 'markRead', 'flag', 'categorize', 'setImportance', 'forwardTo', 'delete', 'webhook',
] as const;

const IMPORTANCE: readonly Importance[] = ['low', 'normal', 'high'];
const TOP_KEYS = ['timezone', 'jobs'];
const RULE_KEYS = ['name', 'match', 'actions', 'stop'];
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
const README = 'README "Writing rules"';
/** A few of Graph's well-known folder names, for hints only. */
const WELL_KNOWN_FOLDERS = ['archive', 'inbox', 'junkemail', 'deleteditems', 'drafts', 'sentitems'];

export class JobsFileError extends AgentError {
  declare readonly code: 'JOBS_FILE_INVALID';
  readonly problems: JobsFileProblem[];
  /** The path as given, used in the message. */
  readonly path: string;

  constructor(path: string, problems: JobsFileProblem[]) {
    const n = problems.length;
    const lines = problems.map((p) => `  ${formatProblem(path, p)}`);
    super('JOBS_FILE_INVALID', `The jobs file ${path} is invalid (${n} problem${n === 1 ? '' : 's'}):\n${lines.join('\n')}`, {
      remedy: `Fix ${n === 1 ? 'it' : 'them'} in ${path}; ${README} describes every key.`,
      status: 500,
    });
    this.name = 'JobsFileError';
    this.problems = problems;
    this.path = path;
  }
}

/** `agent.config.yaml:12 jobs[0].name: …` */
export function formatProblem(path: string, p: JobsFileProblem): string {
  const where = p.line === undefined ? path : `${path}:${p.line}`;
  return p.key ? `${where} ${p.key}: ${p.message}` : `${where}: ${p.message}`;
}

/**
 * Reads and validates a jobs file; a missing file, a bad file, or a custom job
 * whose module does not exist is refused with a JobsFileError listing every problem.
 *
 * @example const file = await loadJobsFile(config.agentConfigPath);
 */
export async function loadJobsFile(path: string): Promise<JobsFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message =
      code === 'ENOENT'
        ? `the jobs file does not exist (looked for ${nodePath.resolve(path)}). Fix: create it; copy agent.config.yaml from the repository and edit it (${README}), or set AGENT_CONFIG to the path of yours.`
        : `the jobs file cannot be read (${code ?? String(error)}). Fix: check that the file is readable by the user running the agent, or set AGENT_CONFIG to another path.`;
    throw new JobsFileError(path, [{ key: '', message }]);
  }
  const { file, problems, locate } = parseLocated(text, path);
  for (const [index, job] of (file?.jobs ?? []).entries()) {
    if (job.type !== 'custom') continue;
    try {
      await access(job.module, constants.R_OK);
    } catch {
      problems.push({
        ...locate(['jobs', index, 'module'], 'value'),
        key: formatPath(['jobs', index, 'module']),
        message: `the module ${job.module} does not exist or cannot be read. Fix: write the path relative to the folder of ${nodePath.basename(path)}, e.g. ./jobs/my-job.js.`,
      });
    }
  }
  if (problems.length > 0 || !file) throw new JobsFileError(path, sortProblems(problems));
  return file;
}

/**
 * Parses and validates a jobs file's text; `.yaml`/`.yml` is YAML, `.json` is JSON.
 * Pure but for `path.resolve` of a custom job's `module`.
 *
 * @example parseJobsFile('jobs: []', 'agent.config.yaml') // { path: '/…/agent.config.yaml', jobs: [] }
 */
export function parseJobsFile(text: string, path: string): JobsFile {
  const { file, problems } = parseLocated(text, path);
  if (problems.length > 0 || !file) throw new JobsFileError(path, sortProblems(problems));
  return file;
}

function sortProblems(problems: JobsFileProblem[]): JobsFileProblem[] {
  const line = (p: JobsFileProblem) => p.line ?? Number.POSITIVE_INFINITY;
  return [...problems].sort((a, b) => line(a) - line(b) || (a.column ?? 0) - (b.column ?? 0));
}

type Segment = string | number;
type Where = 'key' | 'value';
type Locate = (path: Segment[], where: Where) => { line?: number; column?: number };

/** Throws for syntax errors; returns the content's problems (and the jobs that passed) so loadJobsFile can add its own. */
function parseLocated(text: string, path: string): { file?: JobsFile; problems: JobsFileProblem[]; locate: Locate } {
  const ext = nodePath.extname(path).toLowerCase();
  if (ext !== '.yaml' && ext !== '.yml' && ext !== '.json') {
    throw new JobsFileError(path, [
      { key: '', message: `unsupported file type "${ext || '(none)'}". Fix: name the file with .yaml, .yml or .json.` },
    ]);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lineCounter = new LineCounter();
  const problems: JobsFileProblem[] = [];
  let value: unknown;
  let doc: Document | undefined;

  if (ext === '.json') {
    try {
      value = JSON.parse(text);
    } catch (error) {
      const reason = (error as Error).message;
      const position = /position (\d+)/.exec(reason);
      const loc = position ? lineAt(text, Number(position[1])) : undefined;
      throw new JobsFileError(path, [
        { ...loc, key: '', message: `not valid JSON (${reason}). Fix: check commas, quotes and brackets there, or write the file as YAML (agent.config.yaml).` },
      ]);
    }
    // JSON is YAML: parse it again only to learn where each key is.
    const located = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    const duplicates = located.errors.filter((e) => e.code === 'DUPLICATE_KEY');
    if (located.errors.length === 0) doc = located;
    else if (duplicates.length === located.errors.length) {
      doc = located;
      for (const e of duplicates) {
        problems.push({
          ...toLineColumn(lineCounter, e.pos[0]),
          key: '',
          message: `a key appears twice in the same object; JSON would silently keep the last one. Fix: remove or merge the duplicate.`,
        });
      }
    }
  } else {
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length > 0) {
      // Syntax first: checking the content of a half-parsed document would only add noise.
      const seen = new Set<string>();
      for (const e of doc.errors) {
        const loc = toLineColumn(lineCounter, e.pos[0]);
        const id = `${loc.line}:${e.code}`;
        if (seen.has(id)) continue;
        seen.add(id);
        problems.push({ ...loc, key: '', message: `${yamlErrorMessage(e.code, e.message)}` });
      }
      throw new JobsFileError(path, problems);
    }
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      throw new JobsFileError(path, [
        { key: '', message: `the YAML cannot be read (${(error as Error).message}). Fix: quote values that start with * or & (e.g. schedule: "*/5 * * * *").` },
      ]);
    }
  }

  const locate: Locate = (segments, where) => (doc ? locateIn(doc, lineCounter, segments, where) : {});
  const checker = new Checker(path, locate);
  const file = checker.file(value);
  problems.push(...checker.problems);
  return { file, problems, locate };
}

function lineAt(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

function toLineColumn(lineCounter: LineCounter, offset: number): { line: number; column: number } {
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

function yamlErrorMessage(code: string, message: string): string {
  switch (code) {
    case 'TAB_AS_INDENT':
      return `a tab is used for indentation; YAML allows only spaces. Fix: replace the tabs at the start of this line with spaces.`;
    case 'DUPLICATE_KEY':
      return `a key appears twice in the same mapping. Fix: remove or merge the duplicate.`;
    case 'MULTIPLE_DOCS':
      return `the file holds more than one YAML document (a "---" line). Fix: keep a single document with one jobs: list.`;
    case 'BAD_ALIAS':
    case 'UNEXPECTED_TOKEN':
      if (/alias|anchor/i.test(message)) {
        return `YAML syntax error (${message}): a value starting with * is read as an alias. Fix: quote it, e.g. schedule: "*/5 * * * *".`;
      }
      return `YAML syntax error (${message}). Fix: check the indentation and quoting on this line; quote values that contain ": " or start with * & ! { [ @.`;
    default:
      return `YAML syntax error (${message}). Fix: check the indentation (spaces, aligned under the parent) and quoting on this line.`;
  }
}

function locateIn(doc: Document, lineCounter: LineCounter, segments: Segment[], where: Where): { line?: number; column?: number } {
  let node: unknown = doc.contents;
  let offset = rangeStart(node);
  for (const [i, segment] of segments.entries()) {
    const last = i === segments.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(segment));
      if (!pair) break;
      const keyOffset = rangeStart(pair.key);
      if (last && where === 'key') {
        offset = keyOffset ?? offset;
        break;
      }
      node = pair.value;
      offset = rangeStart(node) ?? keyOffset ?? offset;
    } else if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment];
      if (node === undefined) break;
      offset = rangeStart(node) ?? offset;
    } else break;
  }
  return offset === undefined ? {} : toLineColumn(lineCounter, offset);
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as YamlNode | null | undefined)?.range;
  return Array.isArray(range) ? range[0] : undefined;
}

/** `jobs[0].rules[1].match.subjectMatches` */
export function formatPath(segments: Segment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(s)) out += out ? `.${s}` : s;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** Closest candidate by edit distance, or one that differs only in case. */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  const lower = input.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    if (c.toLowerCase() === lower) return c;
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(input.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = row;
  }
  return prev[b.length]!;
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the text ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

function isAddress(s: string): boolean {
  return /^[^\s@]+@[^\s@]+$/.test(s);
}

/** Checks a folder path for `moveTo`/`copyTo`/`folder`; returns the reason it is bad, if it is. */
function folderPathProblem(p: string): string | undefined {
  if (p.trim() === '') return 'the folder path is empty';
  if (p.startsWith('/') || p.endsWith('/')) return `the folder path ${JSON.stringify(p)} starts or ends with "/"`;
  if (p.split('/').some((s) => s.trim() === '')) return `the folder path ${JSON.stringify(p)} has an empty level ("//")`;
  return undefined;
}

class Checker {
  readonly problems: JobsFileProblem[] = [];

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
      if ((MATCH_KEYS as readonly string[]).includes(key) || (ACTION_KEYS as readonly string[]).includes(key)) {
        return `"${key}" belongs to a rule: put it under rules: → match: or actions:.`;
      }
      return undefined;
    });

    let job: JobSpec | undefined;
    if (type === 'inbox-rules') {
      const folder = this.folder(raw, at);
      const backfill = this.boolean(raw, at, 'backfill', false, 'true (act on mail already in the folder on the first run) or false (only new mail)');
      const rules = this.rules(raw, at);
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

  private rules(raw: Obj, at: Segment[]): Rule[] | undefined {
    if (raw.rules === undefined) {
      this.add(at, `an inbox-rules job needs rules:. Fix: add a list of rules, each with name:, match: and actions: (see ${README}).`);
      return undefined;
    }
    if (!Array.isArray(raw.rules) || raw.rules.length === 0) {
      this.add([...at, 'rules'], `rules must be a non-empty list, but it is ${describe(raw.rules)}${Array.isArray(raw.rules) ? ' that is empty' : ''}. Fix: add at least one rule with name:, match: and actions:.`);
      return undefined;
    }
    const rules: Rule[] = [];
    const firstIndex = new Map<string, number>();
    let ok = true;
    raw.rules.forEach((r, index) => {
      const ruleAt = [...at, 'rules', index];
      const rule = this.rule(r, ruleAt);
      if (isObject(r) && typeof r.name === 'string') {
        const first = firstIndex.get(r.name);
        if (first === undefined) firstIndex.set(r.name, index);
        else {
          const firstLine = this.locate([...at, 'rules', first, 'name'], 'value').line;
          this.add([...ruleAt, 'name'], `duplicate rule name "${r.name}" in this job (also rules[${first}]${firstLine ? `, line ${firstLine}` : ''}). Fix: give each rule its own name; the run report says which rule acted.`);
          ok = false;
        }
      }
      if (rule) rules.push(rule);
      else ok = false;
    });
    return ok ? rules : undefined;
  }

  private rule(raw: unknown, at: Segment[]): Rule | undefined {
    if (!isObject(raw)) {
      this.add(at, `a rule must be a mapping with name:, match: and actions:, but it is ${describe(raw)}. Fix: see ${README}.`);
      return undefined;
    }
    const before = this.problems.length;
    this.unknownKeys(raw, at, RULE_KEYS, 'a rule', (key) => {
      if ((MATCH_KEYS as readonly string[]).includes(key)) return `"${key}" is a match key: put it under match:, e.g. match: { ${key}: … }.`;
      if ((ACTION_KEYS as readonly string[]).includes(key)) return `"${key}" is an action: put it in the actions: list, e.g. actions: [ { ${key}: … } ].`;
      return undefined;
    });
    let name: string | undefined;
    if (typeof raw.name !== 'string' || raw.name.trim() === '') {
      this.add(raw.name === undefined ? at : [...at, 'name'], `the rule has no name. Fix: add name: (e.g. name: newsletters); the run report says which rule acted.`);
    } else name = raw.name;

    let match: MatchSpec | undefined;
    if (raw.match === undefined) {
      this.add(at, `the rule has no match:. Fix: add the conditions a message must meet, e.g. match: { fromDomain: news.example.com }.`);
    } else match = this.match(raw.match, [...at, 'match']);

    const actions = this.actions(raw.actions, at);
    const stop = this.boolean(raw, at, 'stop', false, 'true (later rules do not see a message this rule matched) or false');
    if (this.problems.length !== before || name === undefined || match === undefined || actions === undefined) return undefined;
    return { name, match, actions, stop };
  }

  private match(raw: unknown, at: Segment[]): MatchSpec | undefined {
    if (!isObject(raw)) {
      this.add(at, `match must be a mapping of conditions, but it is ${describe(raw)}. Fix: e.g. match: { subjectContains: invoice }.`);
      return undefined;
    }
    if (Object.keys(raw).length === 0) {
      this.add(at, `an empty match: {} would match every message. Fix: add a condition; if you really mean every message, write match: { olderThanDays: 0 }.`);
      return undefined;
    }
    const before = this.problems.length;
    this.unknownKeys(raw, at, MATCH_KEYS, 'match', (key) => {
      if ((ACTION_KEYS as readonly string[]).includes(key)) return `"${key}" is an action, not a condition: put it in the rule's actions: list.`;
      if (key === 'stop' || key === 'name') return `"${key}" belongs to the rule: move it out of match:, one level up.`;
      if (key === 'all') return `all conditions of match: must already hold together; list them side by side in match:, and use any: [ … ] for "or".`;
      return undefined;
    });
    const spec: MatchSpec = {};
    const text = (key: 'from' | 'fromDomain' | 'to' | 'cc' | 'subjectContains' | 'subjectMatches' | 'bodyContains' | 'categories', check?: (s: string, at: Segment[]) => void) => {
      const v = raw[key];
      if (v === undefined) return;
      const list = this.textList(v, [...at, key], key);
      if (list === undefined) return;
      list.forEach((s, i) => check?.(s, Array.isArray(v) ? [...at, key, i] : [...at, key]));
      spec[key] = v as string | string[];
    };
    text('from', (s, p) => {
      if (s.startsWith('@') || (!s.includes('@') && s.includes('.'))) {
        this.add(p, `from compares the whole address, and ${JSON.stringify(s)} is not one. Fix: to match a domain write fromDomain: ${s.replace(/^@/, '')}.`);
      } else if (!isAddress(s.trim())) {
        this.add(p, `from compares the whole sender address, and ${JSON.stringify(s)} is not an email address. Fix: write e.g. from: alice@example.com, or use subjectContains / fromDomain.`);
      }
    });
    text('fromDomain', (s, p) => {
      const d = s.trim();
      if (d.includes('@')) {
        this.add(p, `fromDomain takes a domain, and ${JSON.stringify(s)} contains "@". Fix: write fromDomain: ${d.slice(d.lastIndexOf('@') + 1)} for the domain, or from: ${d} for that one address.`);
      } else if (d.startsWith('*') || d.startsWith('.')) {
        this.add(p, `fromDomain ${JSON.stringify(s)} has a wildcard or leading dot; fromDomain already matches subdomains. Fix: write fromDomain: ${d.replace(/^[*.]+/, '')}.`);
      } else if (!/^[^\s/:]+\.[^\s/:]+$/.test(d) || d.endsWith('.')) {
        this.add(p, `${JSON.stringify(s)} is not a domain name. Fix: write a domain such as news.example.com.`);
      }
    });
    for (const key of ['to', 'cc'] as const) {
      text(key, (s, p) => {
        if (!isAddress(s.trim())) {
          this.add(p, `${key} compares whole recipient addresses, and ${JSON.stringify(s)} is not an email address. Fix: write e.g. ${key}: team@example.com.`);
        }
      });
    }
    text('subjectContains');
    text('subjectMatches', (s, p) => {
      if (/^\/.+\/[a-z]*$/s.test(s)) {
        this.add(p, `${JSON.stringify(s)} is written with slashes, which would be matched literally. Fix: write the pattern alone, e.g. subjectMatches: "${s.replace(/^\/(.*)\/[a-z]*$/s, '$1')}"; matching is already case-insensitive.`);
        return;
      }
      try {
        new RegExp(s, SUBJECT_MATCHES_FLAGS);
      } catch (error) {
        this.add(p, `invalid regular expression (${(error as Error).message}). Fix: correct the pattern (JavaScript syntax; escape ( ) [ ] . * + ? with a backslash to match them literally), or use subjectContains for plain text.`);
      }
    });
    text('bodyContains');
    text('categories');

    for (const key of ['hasAttachments', 'isRead'] as const) {
      const v = raw[key];
      if (v === undefined) continue;
      if (typeof v !== 'boolean') this.add([...at, key], `${key} must be true or false, but it is ${describe(v)}. Fix: write ${key}: true or ${key}: false.`);
      else spec[key] = v;
    }
    if (raw.importance !== undefined) {
      const v = raw.importance;
      const list = Array.isArray(v) ? v : [v];
      const bad = list.filter((x) => !(IMPORTANCE as readonly unknown[]).includes(x));
      if (list.length === 0 || bad.length > 0) {
        const hint = typeof bad[0] === 'string' ? suggest(bad[0], IMPORTANCE) : undefined;
        this.add([...at, 'importance'], `importance must be low, normal or high (or a list of them), but it is ${describe(list.length === 0 ? v : bad[0])}. Fix: ${hint ? `did you mean "${hint}"? ` : ''}e.g. importance: high.`);
      } else spec.importance = v as Importance | Importance[];
    }
    if (raw.olderThanDays !== undefined) {
      const v = raw.olderThanDays;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
        this.add([...at, 'olderThanDays'], `olderThanDays must be a whole number of days, 0 or more, but it is ${describe(v)}. Fix: e.g. olderThanDays: 30.`);
      } else spec.olderThanDays = v;
    }
    if (raw.any !== undefined) {
      if (!Array.isArray(raw.any) || raw.any.length === 0) {
        this.add([...at, 'any'], `any must be a non-empty list of match conditions (one of them must hold), but it is ${describe(raw.any)}${Array.isArray(raw.any) ? ' that is empty, which matches nothing' : ''}. Fix: e.g. any: [ { from: a@example.com }, { subjectContains: invoice } ].`);
      } else {
        const subs = raw.any.map((sub, i) => this.match(sub, [...at, 'any', i]));
        if (subs.every((s) => s !== undefined)) spec.any = subs as MatchSpec[];
      }
    }
    return this.problems.length === before ? spec : undefined;
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

  private actions(raw: unknown, ruleAt: Segment[]): Action[] | undefined {
    const at = [...ruleAt, 'actions'];
    if (raw === undefined) {
      this.add(ruleAt, `the rule has no actions:. Fix: add a list, e.g. actions: [ { moveTo: Newsletters }, { markRead: true } ].`);
      return undefined;
    }
    if (!Array.isArray(raw) || raw.length === 0) {
      this.add(at, `actions must be a non-empty list, but it is ${describe(raw)}${Array.isArray(raw) ? ' that is empty' : ''}. Fix: e.g. actions: [ { flag: true } ].`);
      return undefined;
    }
    const before = this.problems.length;
    const actions: Action[] = [];
    const moves: { key: string; index: number }[] = [];
    raw.forEach((item, index) => {
      const action = this.action(item, [...at, index]);
      if (action) actions.push(action);
      // Judged on what was written, so a move with a bad path still counts here.
      const keys = isObject(item) ? Object.keys(item) : [];
      if (keys.length === 1 && (keys[0] === 'moveTo' || keys[0] === 'delete')) moves.push({ key: keys[0], index });
    });
    if (moves.some((m) => m.key === 'moveTo') && moves.some((m) => m.key === 'delete')) {
      const second = moves[1]!;
      this.add([...at, second.index], `a rule may not both moveTo and delete: both move the message, and a message can only end up in one folder. Fix: keep one of them (delete moves to Deleted Items).`);
    } else if (moves.length > 1) {
      const second = moves[1]!;
      this.add([...at, second.index], `the rule moves the message twice (${moves.map((m) => m.key).join(', ')}); only one move can happen. Fix: keep one, and use copyTo to also file a copy elsewhere.`);
    }
    return this.problems.length === before ? actions : undefined;
  }

  private action(raw: unknown, at: Segment[]): Action | undefined {
    if (typeof raw === 'string') {
      const close = suggest(raw, ACTION_KEYS);
      const fix = close ? `write { ${close}: ${close === 'delete' || close === 'markRead' || close === 'flag' ? 'true' : '…'} }` : `an action is a mapping with one key, e.g. { markRead: true }`;
      this.add(at, `an action must be a mapping such as { markRead: true }, but it is ${describe(raw)}. Fix: ${fix}.`);
      return undefined;
    }
    if (!isObject(raw)) {
      this.add(at, `an action must be a mapping such as { markRead: true }, but it is ${describe(raw)}. Fix: write one action per list item.`);
      return undefined;
    }
    const keys = Object.keys(raw);
    if (keys.length !== 1) {
      this.add(at, keys.length === 0
        ? `an empty action {}. Fix: write one action, e.g. { flag: true }, or remove the item.`
        : `an action has exactly one key, but this one has ${keys.length} (${keys.join(', ')}). Fix: write each as its own list item: [ ${keys.map((k) => `{ ${k}: … }`).join(', ')} ].`);
      if (keys.length === 0) return undefined;
      for (const k of keys) if (!(ACTION_KEYS as readonly string[]).includes(k)) this.unknownAction(k, at);
      return undefined;
    }
    const key = keys[0]!;
    const v = raw[key];
    const p = [...at, key];
    switch (key) {
      case 'moveTo':
      case 'copyTo': {
        if (typeof v !== 'string') {
          this.add(p, `${key} takes a folder path, but it is ${describe(v)}. Fix: e.g. { ${key}: "Finance/Invoices" } or a well-known name such as archive.`);
          return undefined;
        }
        const problem = folderPathProblem(v);
        if (problem) {
          this.add(p, `${problem}. Fix: write the path from the mailbox root with "/" between levels and no empty level, e.g. { ${key}: "Finance/Invoices" }.`);
          return undefined;
        }
        return key === 'moveTo' ? { moveTo: v } : { copyTo: v };
      }
      case 'markRead':
      case 'flag':
        if (typeof v !== 'boolean') {
          this.add(p, `${key} must be true or false, but it is ${describe(v)}. Fix: write { ${key}: true }${key === 'markRead' ? ' (false marks unread)' : ' (false clears the flag)'}.`);
          return undefined;
        }
        return key === 'markRead' ? { markRead: v } : { flag: v };
      case 'categorize': {
        const list = this.textList(v, p, 'categorize');
        if (!list) return undefined;
        return { categorize: [...new Set(list.map((s) => s.trim()))] };
      }
      case 'setImportance':
        if (typeof v !== 'string' || !(IMPORTANCE as readonly string[]).includes(v)) {
          const hint = typeof v === 'string' ? suggest(v, IMPORTANCE) : undefined;
          this.add(p, `setImportance must be low, normal or high, but it is ${describe(v)}. Fix: ${hint ? `did you mean "${hint}"? ` : ''}e.g. { setImportance: high }.`);
          return undefined;
        }
        return { setImportance: v as Importance };
      case 'forwardTo': {
        const list = this.textList(v, p, 'forwardTo');
        if (!list) return undefined;
        let ok = true;
        list.forEach((s, i) => {
          if (!isAddress(s.trim())) {
            this.add(Array.isArray(v) ? [...p, i] : p, `forwardTo takes email addresses, and ${JSON.stringify(s)} is not one. Fix: e.g. { forwardTo: assistant@example.com }.`);
            ok = false;
          }
        });
        return ok ? { forwardTo: v as string | string[] } : undefined;
      }
      case 'delete':
        if (v !== true) {
          this.add(p, `delete must be true (it moves the message to Deleted Items), but it is ${describe(v)}. Fix: write { delete: true }, or remove the action.`);
          return undefined;
        }
        return { delete: true };
      case 'webhook': {
        let url: URL | undefined;
        try {
          url = typeof v === 'string' ? new URL(v) : undefined;
        } catch {
          url = undefined;
        }
        if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
          this.add(p, `webhook takes an http(s) URL, but it is ${describe(v)}. Fix: e.g. { webhook: "https://hooks.example.com/mail" }.`);
          return undefined;
        }
        return { webhook: v as string };
      }
      default:
        this.unknownAction(key, at);
        return undefined;
    }
  }

  private unknownAction(key: string, at: Segment[]): void {
    const close = suggest(key, ACTION_KEYS);
    const elsewhere = (MATCH_KEYS as readonly string[]).includes(key)
      ? `"${key}" is a condition: put it under match:.`
      : WELL_KNOWN_FOLDERS.includes(key.toLowerCase())
        ? `to move the message there write { moveTo: ${key.toLowerCase()} }.`
        : undefined;
    this.add([...at, key], `unknown action "${key}". Fix: ${elsewhere ?? (close ? `did you mean "${close}"?` : `an action is one of ${ACTION_KEYS.join(', ')}.`)}`, 'key');
  }
}

function slug(s: string): string {
  const out = s.trim().toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[-._]+|-+$/g, '').slice(0, 64);
  return out || 'triage';
}
