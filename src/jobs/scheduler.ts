import cron, { type RunCoordinator, type ScheduledTask } from 'node-cron';
import type { Logger } from '../config/logger.ts';
import type { JobRunner } from './runner.ts';
import { nextUtcRun } from './utc-next-run.ts';

/**
 * Fires each job on its cron schedule. node-cron's `noOverlap` skips a tick while the previous run
 * is still going; every run is awaited and its failure caught (the runner records it).
 */
export class Scheduler {
  private readonly tasks = new Map<string, ScheduledTask>();
  private readonly inflight = new Set<Promise<unknown>>();
  /** Shutdown, step 1: running jobs stop at their next safe point (inbox-rules: the end of the page). */
  private readonly stopping = new AbortController();
  /** Shutdown, step 2, when step 1 took too long: abort what is in flight. */
  private readonly aborting = new AbortController();

  /** Why runs are paused (e.g. "needs-signin: …"), so the log says it once, not on every tick. */
  private paused?: string;

  /** IANA zone the cron expressions are read in; UTC unless told (node-cron's own default, the host's zone, never). */
  private zone: string;
  private started = false;

  /**
   * `timezone`: the zone to start with (jobs/schedule-zone.ts decides which; `setTimezone` changes it later).
   * `gate` (optional) says why no job can run right now (signed out, a new sign-in needed), or undefined.
   * While it does, ticks are skipped without a run, a failure record or a log line each; one line when
   * the pause starts and one when it ends (the person is told through the notifier by auth itself).
   */
  constructor(private readonly runner: JobRunner, private readonly log: Logger, timezone?: string, private readonly gate?: () => Promise<string | undefined>, private readonly claims?: RunCoordinator) {
    this.zone = timezone ?? 'UTC';
  }

  get timezone(): string {
    return this.zone;
  }

  private async pausedBecause(): Promise<string | undefined> {
    const reason = await this.gate?.().catch(() => undefined);
    if (reason && reason !== this.paused) this.log.warn({ reason }, 'scheduled runs paused until a person acts');
    if (!reason && this.paused) this.log.info('scheduled runs resumed');
    this.paused = reason;
    return reason;
  }

  start(): void {
    this.started = true;
    for (const job of this.runner.jobs) this.tasks.set(job.name, this.schedule(job));
    this.log.info({ jobs: [...this.tasks.keys()], timezone: this.zone }, 'scheduler started');
  }

  /**
   * Re-schedules every job in `timezone` (the mailbox's zone became known or changed). A run in progress goes on;
   * the runner refuses to start the same job twice.
   */
  async setTimezone(timezone: string): Promise<void> {
    if (timezone === this.zone) return;
    this.zone = timezone;
    if (!this.started || this.stopping.signal.aborted) return;
    for (const job of this.runner.jobs) {
      const old = this.tasks.get(job.name);
      this.tasks.set(job.name, this.schedule(job));
      await old?.destroy();
    }
    this.log.info({ timezone }, 'jobs re-scheduled in a new time zone');
  }

  private schedule(job: { name: string; schedule: string }): ScheduledTask {
    return cron.schedule(
      job.schedule,
      async () => {
        if (this.stopping.signal.aborted || (await this.pausedBecause())) return;
        const run = this.runner.run(job.name, { stop: this.stopping.signal, signal: this.aborting.signal }).catch((error) => this.log.warn({ job: job.name, err: error }, 'scheduled run skipped'));
        this.inflight.add(run);
        try {
          await run;
        } finally {
          this.inflight.delete(run);
        }
      },
      // With `claims` (jobs/lock.ts fireClaims), of several instances sharing the store only one runs each fire.
      { name: job.name, noOverlap: true, timezone: this.zone, ...(this.claims ? { distributed: true, runCoordinator: this.claims } : {}) },
    );
  }

  nextRun(name: string): Date | null {
    return this.tasks.get(name)?.getNextRun() ?? null;
  }

  /**
   * Graceful shutdown: no new runs; running jobs are asked to stop at their next safe point (the end of the
   * page they are on) and given `timeoutMs` to get there; then what is still in flight is aborted.
   * Returns whether every run ended within the grace period.
   */
  async stop(timeoutMs = 30_000): Promise<boolean> {
    this.started = false;
    for (const task of this.tasks.values()) await task.destroy();
    this.tasks.clear();
    this.stopping.abort();
    const settled = () => Promise.allSettled([...this.inflight]).then(() => true);
    const inTime = await Promise.race([settled(), new Promise<false>((r) => setTimeout(() => r(false), timeoutMs).unref())]);
    if (!inTime) {
      this.log.warn({ timeoutMs }, 'a job did not reach a safe point in time; aborting it (its page is replayed next run, without acting twice)');
      this.aborting.abort();
      await Promise.race([settled(), new Promise((r) => setTimeout(r, 5_000).unref())]);
    }
    return inTime;
  }

  /** Whether a scheduled run is going on now. */
  get busy(): boolean {
    return this.inflight.size > 0;
  }
}

/** The next time a cron expression fires in `timezone` (UTC when not given, never the host's zone), without scheduling anything. */
export function nextRunOf(schedule: string, timezone = 'UTC'): Date | null {
  // In UTC without Intl, whose first use starts ICU: node-cron's parsed fields, walked by src/jobs/utc-next-run.ts.
  const utc = timezone === 'UTC' ? nextUtcRun(cron.parse(schedule), new Date()) : undefined;
  if (utc) return utc;
  // getNextRun() is null on a task that is not started; getNextRuns() computes from the pattern alone.
  const task = cron.createTask(schedule, () => undefined, { timezone });
  try {
    return task.getNextRuns(1)[0] ?? null;
  } finally {
    void task.destroy();
  }
}
