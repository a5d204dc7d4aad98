import { randomUUID } from 'node:crypto';
import { AgentError } from '../config/errors.ts';
import type { Logger } from '../config/logger.ts';
import type { Store } from '../store/index.ts';
import { GraphError } from './graph-error.ts';

/**
 * The Graph request budget of one mailbox, shared by every job of the process and by every process sharing
 * the store: at most `limit` requests (each `$batch` sub-request counting) in any `windowMs`, sliding.
 * Outlook allows 10,000 per 10 minutes per app and mailbox and answers 429 beyond (docs/microsoft-notes.md,
 * "Headers, attachments, contacts, drive, reply, request budget").
 *
 * How it is shared without a store round trip per request: a process reserves a slice of the budget (a
 * "grant" of up to `chunk` requests, recorded in the store under the store's lock) that it may spend only during
 * the next `useMs`. Graph counts a request from when it receives it, for `windowMs`, so a grant is counted
 * against every later grant until `until + slackMs + windowMs` (`slackMs`: a request sent at the last moment
 * of its grant, or a batch's last sub-request, reaches Graph a little later). A new grant is given only if
 * it and every grant still counted fit in `limit`. Any window of Graph's then holds requests of grants that
 * were all counted when the newest of them was given, so never more than `limit`. The part of a grant left
 * unspent is given back with the process's next reservation.
 * Example: `await budget.take(20)` before sending a `$batch` of 20.
 */
export interface BudgetSettings {
  limit: number;
  windowMs: number;
}

/** Outlook's own budget per app and mailbox (docs/microsoft-notes.md). */
export const OUTLOOK_BUDGET: BudgetSettings = { limit: 10_000, windowMs: 600_000 };

/** The most requests one `take` may ask for: a `$batch` (client.ts BATCH_LIMIT). */
const LARGEST_TAKE = 20;

export interface RequestBudgetOptions extends BudgetSettings {
  store: Store;
  /** The mailbox the budget is for: its key in the store. */
  mailbox: string;
  log?: Logger;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** How long a reserved slice may be spent (default windowMs / 40, at most 15 s). */
  useMs?: number;
  /**
   * How late after its slice a request may still be counted by Graph (default windowMs / 20, between 300 ms and
   * 30 s): the agent's own event loop (planning a page) and Graph's (a batch's sub-requests run one after the
   * other) delay it. 100 ms drew 4 budget 429s in 33,864 requests on the bench's loaded 2-core machine.
   */
  slackMs?: number;
  /**
   * The most requests reserved at a time (default limit / 40, at least one `$batch`). A process starts with one
   * `$batch`'s worth and doubles what it spent in its last slice, up to this: a process killed without `close()`
   * (kill -9, a crash) keeps its last grant counted for the whole window, and forty killed runs holding limit / 40
   * each stalled the mailbox for ten minutes.
   */
  chunk?: number;
}

interface Grant {
  id: string;
  /** Spendable until then (ms). */
  until: number;
  n: number;
}

interface BudgetRecord {
  grants: Grant[];
  /** Graph asked for a long pause (429 with a Retry-After of minutes): nothing is sent before this (ms). */
  pausedUntil?: number;
  pauseReason?: string;
}

/** Why and until when Graph requests of a mailbox are paused. */
export interface Pause {
  until: number;
  reason: string;
}

/**
 * Graph answered 429 with a Retry-After longer than a run should wait, so the mailbox's requests stop until
 * then (in this process and in every process sharing the store). Not a failure a person must fix: the run
 * stops at a page boundary, keeps its progress and reports when it resumes (JobRunResult.deferred).
 */
export class GraphThrottled extends GraphError {
  readonly until: Date;
  readonly reason: string;
  constructor(pause: Pause, what: { method: string; path: string }) {
    super({
      status: 429,
      code: 'TooManyRequests',
      message: `${pause.reason}; the mailbox's Graph requests are paused until ${new Date(pause.until).toISOString()}`,
      method: what.method,
      path: what.path,
      executed: false,
    });
    this.name = 'GraphThrottled';
    this.until = new Date(pause.until);
    this.reason = pause.reason;
  }
}

/** The pause behind a run's failure, if that is what stopped it (the error itself or one it wraps). */
export function throttledBy(error: unknown): GraphThrottled | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof GraphThrottled) return e;
  }
  return undefined;
}

export class RequestBudget {
  readonly settings: BudgetSettings;
  private readonly key: string;
  private readonly id = randomUUID().slice(0, 8);
  private readonly useMs: number;
  private readonly slackMs: number;
  private readonly chunk: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private grant?: Grant & { used: number };
  /** The size of the next grant: one `$batch` at first, then twice what the last slice spent, up to `chunk`. */
  private nextSize = LARGEST_TAKE;
  private seq = 0;
  private paused?: Pause;
  /** Takes run one after another, so one reservation serves the process's concurrent requests in order. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Reservations made (store round trips), for tests and the bench. */
  reservations = 0;
  /** Requests counted so far (each `$batch` sub-request one). */
  taken = 0;

  constructor(private readonly opts: RequestBudgetOptions) {
    if (!Number.isInteger(opts.limit) || opts.limit < LARGEST_TAKE || !(opts.windowMs > 0)) {
      throw new AgentError('CONFIG_INVALID', `The Graph request budget must allow at least ${LARGEST_TAKE} requests (one $batch) in a window longer than 0 (got ${opts.limit} per ${opts.windowMs} ms).`, {
        remedy: 'Set GRAPH_BUDGET to e.g. 10000/10m, Outlook\'s own limit.',
      });
    }
    this.settings = { limit: opts.limit, windowMs: opts.windowMs };
    this.key = `graph-budget:${opts.mailbox.toLowerCase()}`;
    this.useMs = opts.useMs ?? Math.min(15_000, opts.windowMs / 40);
    this.slackMs = opts.slackMs ?? Math.min(30_000, Math.max(300, opts.windowMs / 20));
    this.chunk = Math.min(opts.limit, Math.max(LARGEST_TAKE, opts.chunk ?? Math.ceil(opts.limit / 40)));
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? abortableSleep;
  }

  /**
   * Waits until `n` requests may be sent now, and counts them. Throws GraphThrottled while the mailbox is
   * paused. Call it right before sending (inside the mailbox's concurrency slot): the requests must leave
   * while their slice is valid.
   */
  take(n: number, what: { method: string; path: string; signal?: AbortSignal }): Promise<void> {
    const count = Math.min(Math.max(1, n), this.settings.limit);
    const run = this.tail.then(() => this.takeNow(count, what)).then(() => void (this.taken += count));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** What this process knows of a pause still running. */
  pausedNow(): Pause | undefined {
    return this.paused && this.paused.until > this.now() ? this.paused : undefined;
  }

  /**
   * Gives back what the current slice did not spend, for a process about to end: a `run` that sent one request
   * would otherwise hold its whole slice (limit / 40) for the window, and after forty runs in one window the next
   * one waited minutes for the budget. Example: `await budget.close()` before the store closes (runtime.ts).
   */
  async close(): Promise<void> {
    await this.tail;
    const held = this.grant;
    this.grant = undefined;
    if (!held || held.used >= held.n) return;
    await this.update((record) => {
      const kept = record.grants.find((x) => x.id === held.id);
      if (kept) kept.n = held.used;
      record.grants = record.grants.filter((x) => x.n > 0);
    });
  }

  /** Stops the mailbox's requests until `until` (ms), here and in every process sharing the store. */
  async pause(until: number, reason: string): Promise<void> {
    if (!this.paused || this.paused.until < until) this.paused = { until, reason };
    this.grant = undefined;
    await this.update((record) => {
      if ((record.pausedUntil ?? 0) < until) Object.assign(record, { pausedUntil: until, pauseReason: reason });
    });
  }

  private async takeNow(n: number, what: { method: string; path: string; signal?: AbortSignal }): Promise<void> {
    for (;;) {
      what.signal?.throwIfAborted();
      const now = this.now();
      const paused = this.pausedNow();
      if (paused) throw new GraphThrottled(paused, what);
      const g = this.grant;
      if (g && now < g.until && g.n - g.used >= n) {
        g.used += n;
        return;
      }
      const answer = await this.reserve(n);
      if ('pause' in answer) {
        this.paused = answer.pause;
        throw new GraphThrottled(answer.pause, what);
      }
      if ('grant' in answer) {
        this.grant = { ...answer.grant, used: n };
        return;
      }
      this.opts.log?.debug({ waitMs: answer.waitMs, limit: this.settings.limit, windowMs: this.settings.windowMs }, 'Graph request budget spent; waiting');
      await this.sleep(answer.waitMs, what.signal);
    }
  }

  /** One store round trip under the lock: gives back what the last slice did not spend, and reserves the next. */
  private async reserve(n: number): Promise<{ grant: Grant } | { waitMs: number } | { pause: Pause }> {
    const previous = this.grant;
    this.grant = undefined;
    this.reservations++;
    if (previous) this.nextSize = Math.min(this.chunk, Math.max(LARGEST_TAKE, previous.used * 2));
    let answer!: { grant: Grant } | { waitMs: number } | { pause: Pause };
    await this.update((record, now) => {
      if (previous) {
        const kept = record.grants.find((x) => x.id === previous.id);
        if (kept) kept.n = previous.used;
      }
      record.grants = record.grants.filter((x) => x.n > 0);
      if (record.pausedUntil !== undefined && record.pausedUntil > now) {
        answer = { pause: { until: record.pausedUntil, reason: record.pauseReason ?? 'Graph asked to wait' } };
        return;
      }
      const { limit } = this.settings;
      const counted = record.grants.reduce((sum, x) => sum + x.n, 0);
      if (counted + n <= limit) {
        const grant = { id: `${this.id}-${++this.seq}`, until: now + this.useMs, n: Math.min(Math.max(n, this.nextSize), limit - counted) };
        record.grants.push(grant);
        answer = { grant };
        return;
      }
      // Full: wait until enough of the counted grants stop counting.
      let free = limit - counted;
      let at = now;
      for (const x of [...record.grants].sort((a, b) => a.until - b.until)) {
        free += x.n;
        at = this.expiry(x);
        if (free >= n) break;
      }
      answer = { waitMs: Math.max(1, at - now) };
    });
    return answer;
  }

  /** When a grant stops counting against new ones. */
  private expiry(grant: Grant): number {
    return grant.until + this.slackMs + this.settings.windowMs;
  }

  private async update(change: (record: BudgetRecord, now: number) => void): Promise<void> {
    const { store } = this.opts;
    const release = await store.lock.acquire('graph-budget', { waitMs: 30_000 });
    try {
      const record = (await store.get<BudgetRecord>(this.key)) ?? { grants: [] };
      // Read the clock once the lock is held: the wait for it is not part of any slice.
      const now = this.now();
      record.grants = record.grants.filter((x) => this.expiry(x) > now);
      if (record.pausedUntil !== undefined && record.pausedUntil <= now) {
        delete record.pausedUntil;
        delete record.pauseReason;
      }
      change(record, now);
      const keepMs = Math.max(this.settings.windowMs + this.useMs + this.slackMs, (record.pausedUntil ?? 0) - now) + 60_000;
      await store.set(this.key, record, keepMs);
    } finally {
      await release();
    }
  }
}

/** Waits `ms`, or rejects when `signal` aborts; the abort listener goes with the timer (a paced run sleeps thousands of times on one signal). */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
