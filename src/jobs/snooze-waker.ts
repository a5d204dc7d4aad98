import { randomUUID } from 'node:crypto';
import { AgentError } from '../config/errors.ts';
import type { Logger } from '../config/logger.ts';
import type { GraphClient } from '../graph/client.ts';
import { Mailbox } from '../graph/mailbox.ts';
import type { Store } from '../store/index.ts';
import { AuditLog } from './audit.ts';
import { jobStore } from './context.ts';
import { JobLock } from './lock.ts';
import { SNOOZED_KEY, unsnoozeRecord, wakeSnoozed, type SnoozedMessage } from './rules/actions/snooze.ts';

/**
 * The longest the waker goes without reading the snooze lists again: a `mailbox-agent run` in another process
 * sharing the store may have snoozed a message since (runs in this process re-arm it at once). It also keeps the
 * timer far below setTimeout's limit (2^31-1 ms, ~24.8 days), past which Node fires at once.
 */
export const RECHECK_MS = 60_000;
/** The job's lock was taken (a run, or another instance): try again this soon, or as soon as a run here ends. */
export const BUSY_RETRY_MS = 15_000;
/** A wake-up failed (Graph, the store, the confinement proof): the first wait before the next try, doubled after each failure in a row up to FAILURE_RETRY_MAX_MS. */
export const FAILURE_RETRY_MS = 60_000;
export const FAILURE_RETRY_MAX_MS = 30 * 60_000;
/**
 * A scheduled run of the job due this soon brings the message back itself, at its start: the waker leaves it to
 * the run, whose start would otherwise find the job held and be skipped (the runner waits one second for it).
 */
export const RUN_SOON_MS = 5_000;
/**
 * At most this many messages per hold of the job's lock, then a pause of WAKE_PAUSE_MS: after a long downtime a
 * scheduled run that starts meanwhile gets the job within the second it waits, not after every message is back.
 */
export const WAKE_BATCH = 5;
export const WAKE_PAUSE_MS = 2_000;

/** The waker's sense of time; tests pass a clock they move by hand. */
export interface WakerClock {
  now(): number;
  /** Calls `fn` once after `ms`; returns what cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

const systemClock: WakerClock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, ms);
    // The web server keeps the process alive; this timer never should.
    timer.unref();
    return () => clearTimeout(timer);
  },
};

export interface SnoozeWakerDeps {
  /** The inbox-rules jobs: each keeps its own snooze list (key SNOOZED_KEY in its job store). */
  jobs: string[];
  store: Store;
  graph: GraphClient;
  /** `/me` (delegated) or `/users/{upn}` (app-only). */
  mailboxRoot: string;
  log: Logger;
  /** Why nothing may act on the mailbox now (signed out, a new sign-in needed), or undefined: as the Scheduler's gate. */
  gate?: () => Promise<string | undefined>;
  /** Before acting, as before a run (app-only: the confinement proof); a throw counts as a failed wake-up. */
  preflight?: (log: Logger) => Promise<unknown>;
  /** When the job's next scheduled run is (the Scheduler's `nextRun`), so as to leave the work to a run about to start. */
  nextRun?: (job: string) => Date | null;
  clock?: WakerClock;
}

/** Per job, while it may not be tried: the job was busy, or its wake-ups failed `failures` times in a row. */
interface Backoff {
  until: number;
  failures: number;
  busy: boolean;
}

/**
 * Brings snoozed messages back to the Inbox at their time while the server runs, instead of at the job's next run
 * (hours later for a daily job). One timer, for the soonest `until` among the inbox-rules jobs' snooze lists, or
 * RECHECK_MS if sooner; when it fires, what is due comes back and the timer is set again. At start, what fell due
 * while the agent was down comes back at once. Each wake-up holds the job's own lock (src/jobs/lock.ts), so it
 * never races a run of the job or another instance on the same store; a busy job is tried again shortly, and a
 * scheduled run about to start is left to do it (RUN_SOON_MS). It waits while the gate says a person must act,
 * writes what it brought back to the audit log as a run does ('unsnooze'), and stops on shutdown. Runs still
 * wake what is due at their start (`run <job>`).
 * Example: `const waker = new SnoozeWaker({ jobs: ['triage'], store, graph, mailboxRoot: '/me', log }); waker.start(); … await waker.stop()`.
 */
export class SnoozeWaker {
  private readonly clock: WakerClock;
  private readonly lock: JobLock;
  private readonly audit: AuditLog;
  private readonly backoff = new Map<string, Backoff>();
  /** Aborted by stop(): a wake-up in progress stops between two messages. */
  private readonly stopping = new AbortController();
  private cancelTimer?: () => void;
  private ticking?: Promise<void>;
  /** Asked to look again while a look was going on. */
  private again = false;
  private started = false;
  /** Why wake-ups wait (the gate's reason), so the log says it once, not on every look. */
  private paused?: string;

  constructor(private readonly deps: SnoozeWakerDeps) {
    this.clock = deps.clock ?? systemClock;
    this.lock = new JobLock(deps.store, () => this.clock.now());
    this.audit = new AuditLog(deps.store, () => deps.jobs, () => new Date(this.clock.now()));
  }

  /** Brings back at once what is already due, then keeps the timer. Without inbox-rules jobs it does nothing. */
  start(): void {
    if (this.started || this.stopping.signal.aborted || this.deps.jobs.length === 0) return;
    this.started = true;
    this.look();
  }

  /**
   * Reads the snooze lists again now and sets the timer anew: after a run of `job`, which may have snoozed a
   * message (or brought some back). A job that was busy is tried again at once.
   */
  rearm(job?: string): void {
    if (!this.started || this.stopping.signal.aborted) return;
    if (job !== undefined && !this.deps.jobs.includes(job)) return;
    for (const [name, b] of this.backoff) if (b.busy) this.backoff.delete(name);
    this.look();
  }

  /** Resolves once no look is going on (tests; shutdown). */
  async settled(): Promise<void> {
    while (this.ticking) await this.ticking;
  }

  /** Graceful shutdown: no timer, a wake-up in progress stops after the message it is on. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    await this.settled();
  }

  private look(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (this.stopping.signal.aborted) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    const looking = (async () => {
      let waitMs: number;
      do {
        this.again = false;
        waitMs = await this.tick();
      } while (this.again && !this.stopping.signal.aborted);
      return waitMs;
    })();
    this.ticking = looking.then((waitMs) => {
      this.ticking = undefined;
      if (!this.stopping.signal.aborted) this.arm(waitMs);
    });
  }

  private arm(waitMs: number): void {
    const ms = Math.min(Math.max(0, waitMs), RECHECK_MS);
    this.cancelTimer = this.clock.setTimer(() => {
      this.cancelTimer = undefined;
      this.look();
    }, ms);
  }

  /** One look at every job's list; returns how long to wait before the next. Never rejects. */
  private async tick(): Promise<number> {
    const now = this.clock.now();
    let gate: Promise<string | undefined> | undefined;
    // The gate is asked only when something is due: an agent nobody signed in to yet says nothing.
    const pausedNow = () => (gate ??= this.pausedBecause());
    let next = now + RECHECK_MS;
    for (const job of this.deps.jobs) {
      if (this.stopping.signal.aborted) break;
      try {
        next = Math.min(next, await this.visit(job, now, pausedNow));
      } catch (error) {
        this.deps.log.warn({ job, err: error }, 'could not read the snoozed messages; trying again later');
      }
    }
    return next - this.clock.now();
  }

  /** Wakes what is due in one job's list, when it may; returns when that job next needs a look. */
  private async visit(job: string, now: number, pausedNow: () => Promise<string | undefined>): Promise<number> {
    const times = await this.untilTimes(job);
    if (!times.some((t) => t <= now)) return earliest(times);
    const later = earliest(times.filter((t) => t > now));
    if (await pausedNow()) return later;
    const previous = this.backoff.get(job);
    if (previous && now < previous.until) return Math.min(previous.until, later);
    const run = this.deps.nextRun?.(job)?.getTime();
    if (run !== undefined && run - now <= RUN_SOON_MS) return Math.min(now + BUSY_RETRY_MS, later);
    const dueCount = times.filter((t) => t <= now).length;
    let outcome: 'busy' | 'done' | 'failed';
    try {
      outcome = await this.wake(job, now);
    } catch (error) {
      this.deps.log.warn({ job, err: error }, 'snoozed messages could not be brought back yet; trying again later');
      outcome = 'failed';
    }
    if (outcome === 'busy') {
      this.backoff.set(job, { until: now + BUSY_RETRY_MS, failures: previous?.failures ?? 0, busy: true });
      return Math.min(now + BUSY_RETRY_MS, later);
    }
    const left = await this.untilTimes(job);
    const stillDue = left.filter((t) => t <= now).length;
    if (outcome === 'done' && stillDue <= Math.max(0, dueCount - WAKE_BATCH)) {
      this.backoff.delete(job);
      // More than one batch was due: the next after a pause that lets a run in.
      return stillDue > 0 ? now + WAKE_PAUSE_MS : earliest(left);
    }
    // Something due is still there (a failure another try may cure, logged by wakeSnoozed): never a tight loop.
    const failures = (previous?.failures ?? 0) + 1;
    const until = now + Math.min(FAILURE_RETRY_MS * 2 ** (failures - 1), FAILURE_RETRY_MAX_MS);
    this.backoff.set(job, { until, failures, busy: false });
    return Math.min(until, earliest(left.filter((t) => t > now)));
  }

  /** Under the job's lock, as a run: brings back what is due and records it in the audit log. */
  private async wake(job: string, now: number): Promise<'busy' | 'done'> {
    const runId = randomUUID().slice(0, 8);
    const log = this.deps.log.child({ job, run: runId });
    let held: Awaited<ReturnType<JobLock['acquire']>>;
    try {
      held = await this.lock.acquire(job, runId);
    } catch (error) {
      if (!(error instanceof AgentError && error.code === 'JOB_BUSY')) throw error;
      log.debug('the job is busy; its snoozed messages are tried again shortly');
      return 'busy';
    }
    try {
      await this.deps.preflight?.(log);
      const mailbox = new Mailbox(this.deps.graph.scoped(), this.deps.mailboxRoot);
      const woken = await wakeSnoozed({ store: jobStore(this.deps.store, job), mailbox, log, signal: this.stopping.signal }, new Date(now), { limit: WAKE_BATCH });
      if (woken.length > 0) {
        log.info({ messages: woken.length }, 'snoozed messages brought back to the Inbox');
        await this.audit.append(job, runId, woken.map(unsnoozeRecord)).catch((error) => log.error({ err: error }, 'could not write the audit log'));
      }
      return 'done';
    } finally {
      await held.release().catch((error) => log.warn({ err: error }, 'could not release the job lock'));
    }
  }

  private async untilTimes(job: string): Promise<number[]> {
    const list = (await jobStore(this.deps.store, job).get<SnoozedMessage[]>(SNOOZED_KEY)) ?? [];
    return list.map((s) => Date.parse(s.until)).filter(Number.isFinite);
  }

  private async pausedBecause(): Promise<string | undefined> {
    const reason = await this.deps.gate?.().catch(() => undefined);
    if (reason && reason !== this.paused) this.deps.log.warn({ reason }, 'snoozed messages that are due wait until a person acts');
    if (!reason && this.paused) this.deps.log.info('snoozed messages are brought back again');
    this.paused = reason;
    return reason;
  }
}

/** The soonest of `times` (ms), or Infinity for none. */
function earliest(times: number[]): number {
  return times.reduce((a, b) => Math.min(a, b), Infinity);
}
