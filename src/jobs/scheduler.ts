import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../config/logger.ts';
import type { JobRunner } from './runner.ts';

/**
 * Fires each job on its cron schedule. node-cron's `noOverlap` skips a tick while the previous run
 * is still going; every run is awaited and its failure caught (the runner records it).
 */
export class Scheduler {
  private readonly tasks = new Map<string, ScheduledTask>();
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(private readonly runner: JobRunner, private readonly log: Logger, private readonly timezone?: string) {}

  start(): void {
    for (const job of this.runner.jobs) {
      const task = cron.schedule(
        job.schedule,
        async () => {
          const run = this.runner.run(job.name).catch((error) => this.log.warn({ job: job.name, err: error }, 'scheduled run skipped'));
          this.inflight.add(run);
          try {
            await run;
          } finally {
            this.inflight.delete(run);
          }
        },
        { name: job.name, noOverlap: true, timezone: this.timezone },
      );
      this.tasks.set(job.name, task);
    }
    this.log.info({ jobs: [...this.tasks.keys()] }, 'scheduler started');
  }

  nextRun(name: string): Date | null {
    return this.tasks.get(name)?.getNextRun() ?? null;
  }

  /** Stops scheduling and waits (bounded) for running jobs. */
  async stop(timeoutMs = 30_000): Promise<void> {
    for (const task of this.tasks.values()) await task.destroy();
    this.tasks.clear();
    await Promise.race([Promise.allSettled([...this.inflight]), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }
}

/** The next time a cron expression fires, without scheduling anything. */
export function nextRunOf(schedule: string, timezone?: string): Date | null {
  // getNextRun() is null on a task that is not started; getNextRuns() computes from the pattern alone.
  const task = cron.createTask(schedule, () => undefined, { timezone });
  try {
    return task.getNextRuns(1)[0] ?? null;
  } finally {
    void task.destroy();
  }
}
