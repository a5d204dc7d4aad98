import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { JobSpec, JobsFile } from '../config/jobs-file.ts';
import { AgentError, describeError } from '../config/errors.ts';
import type { Logger } from '../config/logger.ts';
import type { GraphClient } from '../graph/client.ts';
import type { Notice, NotifySink } from '../notify/index.ts';
import { Mailbox } from '../graph/mailbox.ts';
import { throttledBy } from '../graph/request-budget.ts';
import type { Store } from '../store/index.ts';
import { AuditLog, type AuditEntry } from './audit.ts';
import { jobStore, type ActionRecord, type JobContext } from './context.ts';
import { JobLock } from './lock.ts';
import { runAgendaDigest } from './agenda-digest.ts';
import { runInboxRules } from './inbox-rules.ts';
import { listSnoozed } from './rules/actions/snooze.ts';
import { runCalendarRules } from './calendar-rules.ts';
import path from 'node:path';

/** The notifier's key for a failing job is this and its name: `job:triage`. */
const JOB_NOTIFY_PREFIX = 'job:';

/** The JSON of `run --json` and `POST /api/jobs/:name/run` (DESIGN.md). */
export interface JobRunResult {
  job: string;
  ok: boolean;
  dryRun: boolean;
  examined: number;
  actions: ActionRecord[];
  graphRequests: number;
  error?: string;
  /** Set when the failure needs a person (sign-in), so surfaces can exit 2. */
  errorCode?: string;
  /**
   * Graph asked for a long pause (429, Retry-After of minutes): the run stopped at a page boundary with its
   * progress kept, `ok` stays true, and the next scheduled run at or after `until` continues. Not a failure.
   */
  deferred?: { until: string; reason: string };
  startedAt: string;
  finishedAt: string;
}

export interface LastRun {
  at: string;
  ok: boolean;
  dryRun: boolean;
  examined: number;
  actions: number;
  failedActions: number;
  error?: string;
  /** Runs that failed in a row up to this one (0 after a success); kept in the store so a restart keeps counting. */
  failuresInARow?: number;
  /** The run stopped early because Graph asked for a pause; it continues after `until`. */
  deferred?: { until: string; reason: string };
}

export interface JobRunnerDeps {
  jobs: JobsFile;
  graph: GraphClient;
  /** `/me` (delegated) or `/users/{upn}` (app-only). */
  mailboxRoot: string;
  store: Store;
  log: Logger;
  now?: () => Date;
  fetch?: typeof fetch;
  /** Before every run (app-only: the confinement proof); a throw fails the run before any job code runs. */
  preflight?: (log: Logger) => Promise<unknown>;
  /** Told when a job has failed `notifyAfterFailures` runs in a row (reminders are the notifier's), and when it recovers. */
  notify?: NotifySink & { active(): Promise<Notice[]> };
  /** NOTIFY_AFTER_FAILURES; default 3. */
  notifyAfterFailures?: number;
  /** NOTIFY_URL, for the calendar rules' `notify` action. */
  notifyUrl?: URL;
}

/**
 * Runs jobs: awaits and catches every run, refuses overlap, records the result.
 * Example: `const result = await runner.run('triage', { dryRun: true })`.
 */
export class JobRunner {
  private readonly running = new Set<string>();
  private readonly audit: AuditLog;
  private readonly lock: JobLock;
  private readonly finishedListeners = new Set<(job: string) => void>();
  constructor(private readonly deps: JobRunnerDeps) {
    const now = deps.now ?? (() => new Date());
    this.audit = new AuditLog(deps.store, () => deps.jobs.jobs.map((j) => j.name), now);
    this.lock = new JobLock(deps.store, () => now().getTime());
  }

  /**
   * The audit log, newest first: every action jobs took (done, failed, skipped), for status and the dashboard.
   * Example: `await runner.recentActions({ job: 'triage', limit: 20 })`.
   */
  recentActions(options: { job?: string; limit?: number } = {}): Promise<AuditEntry[]> {
    return this.audit.recent(options);
  }

  /** What inbox rules have snoozed and until when, soonest first (src/jobs/rules/actions/snooze.ts). */
  snoozed(): ReturnType<typeof listSnoozed> {
    return listSnoozed(this.deps.jobs.jobs.filter((j) => j.type === 'inbox-rules').map((j) => ({ name: j.name, store: jobStore(this.deps.store, j.name) })));
  }

  /**
   * Calls `listener` after each run that is not a dry run (the server's snooze waker reads again what it snoozed).
   * Example: `const off = runner.onRunFinished((job) => waker.rearm(job)); … off()`.
   */
  onRunFinished(listener: (job: string) => void): () => void {
    this.finishedListeners.add(listener);
    return () => void this.finishedListeners.delete(listener);
  }

  get jobs(): JobSpec[] {
    return this.deps.jobs.jobs;
  }

  find(name: string): JobSpec {
    const job = this.deps.jobs.jobs.find((j) => j.name === name);
    if (!job) {
      const names = this.deps.jobs.jobs.map((j) => j.name).join(', ') || '(none)';
      throw new AgentError('JOB_NOT_FOUND', `There is no job named "${name}" in ${this.deps.jobs.path}.`, { remedy: `Jobs defined: ${names}.`, status: 404 });
    }
    return job;
  }

  /**
   * A job taken out of the jobs file no longer fails: ends its `job-failing` notification (one `recovered`
   * message) instead of reminding a person of it forever. The server calls it at start.
   */
  async settleRemovedJobs(): Promise<void> {
    const notify = this.deps.notify;
    if (!notify) return;
    const names = new Set(this.jobs.map((j) => j.name));
    for (const notice of await notify.active()) {
      const name = notice.event === 'job-failing' && notice.key.startsWith(JOB_NOTIFY_PREFIX) ? notice.key.slice(JOB_NOTIFY_PREFIX.length) : undefined;
      if (name !== undefined && !names.has(name)) await notify.resolve(notice.key, { reason: `The job "${name}" is no longer in ${this.deps.jobs.path}.` });
    }
  }

  async lastRun(name: string): Promise<LastRun | undefined> {
    return this.deps.store.get<LastRun>(`run:${name}:last`);
  }

  /** Never throws for a failing job: the failure is in the result. Throws only for an unknown job or overlap. */
  async run(name: string, options: { dryRun?: boolean; signal?: AbortSignal; stop?: AbortSignal; onProgress?: (report: JobContext['report']) => void } = {}): Promise<JobRunResult> {
    const job = this.find(name);
    if (this.running.has(name)) {
      throw new AgentError('JOB_BUSY', `The job "${name}" is already running.`, { remedy: 'Wait for it to finish; its result will show in status.', status: 409 });
    }
    const now = this.deps.now ?? (() => new Date());
    const runId = randomUUID().slice(0, 8);
    const dryRun = options.dryRun ?? false;
    this.running.add(name);
    // Across processes sharing the store: one run of a job at a time (a dry run writes nothing, so needs no lock).
    let held: Awaited<ReturnType<JobLock['acquire']>> | undefined;
    if (!dryRun) {
      try {
        held = await this.lock.acquire(name, runId);
      } catch (error) {
        this.running.delete(name);
        throw error;
      }
    }
    const runStart = now();
    const graph = this.deps.graph.scoped();
    const log = this.deps.log.child({ job: name, run: runId, ...(dryRun ? { dryRun } : {}) });
    let flushed = 0;
    const ctx: JobContext = {
      job: name,
      runId,
      mailbox: new Mailbox(graph, this.deps.mailboxRoot),
      graph,
      store: jobStore(this.deps.store, name),
      log,
      dryRun,
      signal: options.signal ?? new AbortController().signal,
      stop: options.stop ?? new AbortController().signal,
      onProgress: options.onProgress,
      runStart,
      fetch: this.deps.fetch ?? fetch,
      report: { examined: 0, actions: [] },
      checkpoint: async () => {
        if (dryRun) return;
        const fresh = ctx.report.actions.slice(flushed);
        flushed = ctx.report.actions.length;
        await this.audit.append(name, runId, fresh);
      },
    };
    let error: unknown;
    log.info('run started');
    try {
      await this.deps.preflight?.(log);
      await runJob(ctx, job, this.deps.jobs, this.deps.notifyUrl);
    } catch (caught) {
      error = caught;
    }
    try {
      await ctx.checkpoint();
    } catch (caught) {
      log.error({ err: caught }, 'could not write the audit log');
      error ??= caught;
    }
    await held?.release().catch((e) => log.warn({ err: e }, 'could not release the job lock'));
    this.running.delete(name);
    // Graph asked for a pause of minutes: the work stops cleanly and waits for it, nobody has anything to fix.
    const throttled = throttledBy(error);
    const deferred = throttled ? { until: throttled.until.toISOString(), reason: throttled.reason } : undefined;
    if (throttled) error = undefined;
    const result: JobRunResult = {
      job: name,
      ok: error === undefined,
      dryRun,
      examined: ctx.report.examined,
      actions: ctx.report.actions,
      graphRequests: graph.requests,
      ...(error !== undefined ? { error: describeError(error), errorCode: error instanceof AgentError ? error.code : 'INTERNAL' } : {}),
      ...(deferred ? { deferred } : {}),
      startedAt: runStart.toISOString(),
      finishedAt: now().toISOString(),
    };
    const failedActions = result.actions.filter((a) => a.result === 'failed').length;
    if (error) log.error({ err: error }, 'run failed');
    else if (deferred) log.warn({ until: deferred.until, reason: deferred.reason, examined: result.examined, actions: result.actions.length }, 'run deferred: Graph asked for a pause; progress is kept and the next run after it continues');
    else log.info({ examined: result.examined, actions: result.actions.length, failedActions, graphRequests: result.graphRequests }, 'run finished');
    if (!dryRun) {
      await this.record(name, result, failedActions, error, log);
      for (const listener of this.finishedListeners) listener(name);
    }
    return result;
  }

  /**
   * The one place a run's outcome is recorded and, when a job keeps failing, a person told. A run stopped by a
   * shutdown neither failed nor succeeded: the count of failures in a row stays as it was.
   */
  private async record(name: string, result: JobRunResult, failedActions: number, error: unknown, log: Logger): Promise<void> {
    const previous = await this.lastRun(name).catch(() => undefined);
    const stopped = error instanceof AgentError && error.code === 'SHUTTING_DOWN';
    // A shutdown or a pause Graph asked for leaves the count of failures in a row as it was.
    const failuresInARow = result.deferred || stopped ? (previous?.failuresInARow ?? 0) : result.ok ? 0 : (previous?.failuresInARow ?? 0) + 1;
    const last: LastRun = { at: result.finishedAt, ok: result.ok, dryRun: false, examined: result.examined, actions: result.actions.length, failedActions, error: result.error, failuresInARow, ...(result.deferred ? { deferred: result.deferred } : {}) };
    await this.deps.store.set(`run:${name}:last`, last).catch((e) => log.error({ err: e }, 'could not record the run'));
    const notify = this.deps.notify;
    if (!notify) return;
    const key = `${JOB_NOTIFY_PREFIX}${name}`;
    if (result.deferred) return;
    if (result.ok) return notify.resolve(key, { reason: `The job "${name}" runs again: its last run succeeded.` });
    const threshold = this.deps.notifyAfterFailures ?? 3;
    if (stopped || failuresInARow < threshold) return;
    const cause = error instanceof AgentError ? error.message : result.error ?? 'the run failed';
    await notify.raise(key, {
      event: 'job-failing',
      reason: `The job "${name}" has failed ${failuresInARow} runs in a row. The last one: ${cause}`,
      remedy: error instanceof AgentError && error.remedy
        ? `${error.remedy} The job keeps running on its schedule; "npx mailbox-agent run ${name}" tries it now.`
        : `Run "npx mailbox-agent run ${name}" to see the failure, and "npx mailbox-agent doctor" to check the set-up; the job keeps running on its schedule.`,
    });
  }
}

async function runJob(ctx: JobContext, job: JobSpec, file: JobsFile, notifyUrl?: URL): Promise<void> {
  switch (job.type) {
    case 'inbox-rules':
      return runInboxRules(ctx, job);
    case 'custom': {
      const mod = await importJobModule(job.module);
      const run = (mod.default && typeof mod.default.run === 'function' ? mod.default.run.bind(mod.default) : mod.run) as ((c: JobContext) => unknown) | undefined;
      if (typeof run !== 'function') {
        throw new AgentError('JOBS_FILE_INVALID', `${job.module} does not export a job (an object with run(ctx), or a run function).`, { remedy: 'Export `export default { async run(ctx) { … } }` from the module.' });
      }
      await run(ctx);
      return;
    }
    case 'calendar-rules':
      return runCalendarRules(ctx, job, { timezone: file.timezone, notifyUrl });
    case 'agenda-digest':
      return runAgendaDigest(ctx, job, { timezone: file.timezone, baseDir: path.dirname(file.path) });
  }
}

/**
 * A custom job's module. A `.ts` one goes through tsx's `tsImport`, whatever runs the agent (the bundle loads no
 * TypeScript) and whatever its folder's package.json says: with none, Node would take it for CommonJS and fail on
 * its first type annotation. tsx then hands a CommonJS-compiled module's exports one `default` deeper.
 */
function importJobModule(file: string): Promise<JobModule> {
  const url = pathToFileURL(file).href;
  if (!/\.[mc]?ts$/i.test(file)) return import(url);
  // Once per file, as import() caches its modules: tsImport loads a fresh copy on every call.
  let loaded = typescriptModules.get(url);
  if (!loaded) {
    loaded = import('tsx/esm/api').then(async ({ tsImport }) => {
      const mod = (await tsImport(url, import.meta.url)) as JobModule & { default?: { default?: JobModule['default'] } };
      return mod.run === undefined && mod.default?.run === undefined && mod.default?.default ? { default: mod.default.default } : mod;
    });
    typescriptModules.set(url, loaded);
    loaded.catch(() => typescriptModules.delete(url));
  }
  return loaded;
}

type JobModule = { default?: { run?: unknown }; run?: unknown };
const typescriptModules = new Map<string, Promise<JobModule>>();
