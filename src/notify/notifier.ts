import type { Logger } from '../config/logger.ts';
import type { FetchLike } from '../config/transport.ts';
import type { Store } from '../store/index.ts';

/** What a person is told. Never put a token, a code or a secret in any of these fields. */
export interface NotifyEventInput {
  /** e.g. 'needs-signin', 'auth-config', 'confinement-broken', 'job-failing'. */
  event: string;
  reason: string;
  remedy: string;
}

/** A condition still raised, as `active()` lists it. */
export interface Notice extends NotifyEventInput {
  key: string;
  /** When the condition began (ISO 8601). */
  since: string;
}

/** The JSON body POSTed to NOTIFY_URL. */
export interface NotifyPayload extends NotifyEventInput {
  /** Which condition: 'auth', 'confinement', 'job:triage', … (stable across reminders). */
  key: string;
  signinUrl: string;
  /** When this message was sent (ISO 8601). */
  at: string;
  /** When the condition began (ISO 8601). */
  since: string;
  /** true on the reminders sent every NOTIFY_REPEAT_HOURS while unresolved. */
  reminder: boolean;
}

/** One raised condition, kept in the store so that a restart neither forgets nor repeats it. */
interface RaisedState extends NotifyEventInput {
  raisedAt: number;
  /** Last time a message about it reached the webhook. */
  lastSentAt?: number;
  /** A message not yet delivered: retried by `tick()`. */
  pending?: { payload: NotifyPayload; attempts: number; nextAttemptAt: number };
}

/** A `recovered` message whose delivery failed; retried by `tick()` like any other. */
interface PendingRecovery {
  payload: NotifyPayload;
  attempts: number;
  nextAttemptAt: number;
}

const INDEX_KEY = 'notify:index';
const stateKey = (key: string) => `notify:state:${key}`;
const RETRY_BASE_MS = 60_000;
const RETRY_MAX_MS = 3_600_000;
const DELIVERY_TIMEOUT_MS = 10_000;

export interface NotifierOptions {
  /** NOTIFY_URL; unset: conditions are still tracked (and logged), nothing is POSTed. */
  url?: URL;
  /** NOTIFY_REPEAT_HOURS in ms. */
  repeatMs: number;
  store: Store;
  fetch?: FetchLike;
  log: Logger;
  signinUrl: string;
  now?: () => number;
}

/** The part other modules depend on: raise a condition, resolve it. */
export interface NotifySink {
  raise(key: string, input: NotifyEventInput): Promise<void>;
  resolve(key: string, input?: Partial<NotifyEventInput>): Promise<void>;
}

/**
 * Tells a person, through the NOTIFY_URL webhook, when the agent needs them, and again when it no
 * longer does. One POST per state change, a reminder every NOTIFY_REPEAT_HOURS while unresolved.
 * Delivery failures are logged and retried with back-off by `tick()`; they never throw.
 *
 * Example:
 *   await notifier.raise('auth', { event: 'needs-signin', reason: 'Your password was changed (AADSTS50173).', remedy: 'Sign in again: …' });
 *   await notifier.resolve('auth');   // POSTs {event: 'recovered', …} once
 *   setInterval(() => notifier.tick(), 60_000);   // reminders and retries (the server does this)
 */
export class Notifier implements NotifySink {
  private readonly opts: NotifierOptions;
  private readonly now: () => number;
  /** Serialises state changes in this process, so two raises of one key POST once. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(opts: NotifierOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
  }

  /** Records the condition; POSTs only when it is new or its event changed. Never throws. */
  raise(key: string, input: NotifyEventInput): Promise<void> {
    return this.serial(async () => {
      const existing = await this.opts.store.get<RaisedState>(stateKey(key));
      if (existing && existing.event === input.event) {
        if (existing.reason !== input.reason || existing.remedy !== input.remedy) {
          // Same condition, new wording (e.g. another AADSTS code): keep it for the reminders, no new POST.
          await this.opts.store.set(stateKey(key), { ...existing, reason: input.reason, remedy: input.remedy });
        }
        return;
      }
      const now = this.now();
      const state: RaisedState = { event: input.event, reason: input.reason, remedy: input.remedy, raisedAt: now };
      await this.addToIndex(key);
      this.opts.log.warn({ notify: key, event: input.event, reason: input.reason }, 'a person is needed');
      await this.send(key, state, this.payload(key, state, false));
    });
  }

  /** Ends the condition; POSTs `recovered` once if it was raised. Never throws. */
  resolve(key: string, input: Partial<NotifyEventInput> = {}): Promise<void> {
    return this.serial(async () => {
      const existing = await this.opts.store.get<RaisedState>(stateKey(key));
      if (!existing) return;
      await this.opts.store.delete(stateKey(key));
      const payload: NotifyPayload = {
        event: input.event ?? 'recovered',
        reason: input.reason ?? `Resolved: ${existing.reason}`,
        remedy: input.remedy ?? 'Nothing to do.',
        key,
        signinUrl: this.opts.signinUrl,
        at: new Date(this.now()).toISOString(),
        since: new Date(existing.raisedAt).toISOString(),
        reminder: false,
      };
      this.opts.log.info({ notify: key, event: payload.event }, 'resolved');
      if (!this.opts.url) return this.removeFromIndex(key);
      if (await this.deliver(payload)) return this.removeFromIndex(key);
      await this.opts.store.set<PendingRecovery>(`notify:recovery:${key}`, { payload, attempts: 1, nextAttemptAt: this.now() + RETRY_BASE_MS });
    });
  }

  /** Conditions still raised (the dashboard and tests read this). */
  async active(): Promise<Notice[]> {
    const keys = (await this.opts.store.get<string[]>(INDEX_KEY)) ?? [];
    const out: Notice[] = [];
    for (const key of keys) {
      const s = await this.opts.store.get<RaisedState>(stateKey(key));
      if (s) out.push({ key, event: s.event, reason: s.reason, remedy: s.remedy, since: new Date(s.raisedAt).toISOString() });
    }
    return out;
  }

  /** Sends due reminders and retries failed deliveries. Call it periodically (the server: every minute). */
  tick(): Promise<void> {
    return this.serial(async () => {
      const keys = (await this.opts.store.get<string[]>(INDEX_KEY)) ?? [];
      const now = this.now();
      for (const key of keys) {
        const recoveryKey = `notify:recovery:${key}`;
        let recovery = await this.opts.store.get<PendingRecovery>(recoveryKey);
        if (recovery && recovery.nextAttemptAt <= now) {
          if (await this.deliver(recovery.payload)) {
            await this.opts.store.delete(recoveryKey);
            recovery = undefined;
          } else {
            await this.opts.store.set<PendingRecovery>(recoveryKey, { ...recovery, attempts: recovery.attempts + 1, nextAttemptAt: now + backoff(recovery.attempts + 1, this.opts.repeatMs) });
          }
        }
        const state = await this.opts.store.get<RaisedState>(stateKey(key));
        if (!state) {
          if (!recovery) await this.removeFromIndex(key);
          continue;
        }
        if (state.pending) {
          if (state.pending.nextAttemptAt <= now) await this.send(key, state, state.pending.payload, state.pending.attempts);
          continue;
        }
        const last = state.lastSentAt ?? state.raisedAt;
        if (now - last >= this.opts.repeatMs) await this.send(key, state, this.payload(key, state, true));
      }
    });
  }

  private payload(key: string, state: RaisedState, reminder: boolean): NotifyPayload {
    return {
      event: state.event, reason: state.reason, remedy: state.remedy, key, signinUrl: this.opts.signinUrl,
      at: new Date(this.now()).toISOString(), since: new Date(state.raisedAt).toISOString(), reminder,
    };
  }

  /** Delivers, then records either the success or the pending retry. */
  private async send(key: string, state: RaisedState, payload: NotifyPayload, attempts = 0): Promise<void> {
    if (!this.opts.url) {
      await this.opts.store.set<RaisedState>(stateKey(key), { ...state, pending: undefined, lastSentAt: this.now() });
      return;
    }
    const sent = await this.deliver({ ...payload, at: new Date(this.now()).toISOString() });
    const now = this.now();
    const next: RaisedState = sent
      ? { ...state, pending: undefined, lastSentAt: now }
      : { ...state, pending: { payload, attempts: attempts + 1, nextAttemptAt: now + backoff(attempts + 1, this.opts.repeatMs) } };
    await this.opts.store.set<RaisedState>(stateKey(key), next);
  }

  /** One POST; true when the webhook answered 2xx. Failures are logged (origin only: the URL may hold a secret). */
  private async deliver(payload: NotifyPayload): Promise<boolean> {
    const url = this.opts.url!;
    try {
      const response = await (this.opts.fetch ?? fetch)(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'mailbox-agent' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
      });
      await response.body?.cancel().catch(() => undefined);
      if (response.ok) return true;
      this.opts.log.warn({ notify: payload.key, event: payload.event, webhook: url.origin, status: response.status }, 'the NOTIFY_URL webhook refused the notification; it will be retried');
    } catch (error) {
      this.opts.log.warn({ notify: payload.key, event: payload.event, webhook: url.origin, reason: (error as Error).message }, 'the NOTIFY_URL webhook could not be reached; it will be retried');
    }
    return false;
  }

  private async addToIndex(key: string): Promise<void> {
    const keys = (await this.opts.store.get<string[]>(INDEX_KEY)) ?? [];
    if (!keys.includes(key)) await this.opts.store.set(INDEX_KEY, [...keys, key]);
  }

  private async removeFromIndex(key: string): Promise<void> {
    const keys = (await this.opts.store.get<string[]>(INDEX_KEY)) ?? [];
    if (keys.includes(key)) await this.opts.store.set(INDEX_KEY, keys.filter((k) => k !== key));
  }

  /** Runs state changes one after another; a failing store is logged, never thrown at the caller. */
  private serial(work: () => Promise<void>): Promise<void> {
    const run = this.chain.then(work).catch((error) => {
      this.opts.log.error({ reason: (error as Error).message }, 'could not record a notification');
    });
    this.chain = run;
    return run;
  }
}

/** 1 min, 2 min, 4 min … capped at an hour and at the reminder interval. */
function backoff(attempts: number, repeatMs: number): number {
  return Math.min(RETRY_BASE_MS * 2 ** Math.max(0, attempts - 1), RETRY_MAX_MS, Math.max(RETRY_BASE_MS, repeatMs));
}
