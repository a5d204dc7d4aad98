import type { Logger } from '../config/logger.ts';
import { AgentError } from '../config/errors.ts';
import type { Notifier } from '../notify/index.ts';
import type { DelegatedAuth } from './delegated.ts';

/** How often the server looks: the refresh happens at most this long after KEEPALIVE_DAYS is reached. */
export const KEEPALIVE_CHECK_MS = 10 * 60_000;

/**
 * The server's upkeep loop: refreshes the delegated token when the last refresh is KEEPALIVE_DAYS old
 * (so Entra's fixed 90-day inactivity limit never bites, even when no job needs a token), and sends
 * due notification reminders and retries. Every failure is logged, none is thrown: a dead token has
 * already been recorded and notified by DelegatedAuth.
 * Example: `const upkeep = new KeepAlive({ auth, notifier, log }); upkeep.start(); … await upkeep.stop()`.
 */
export class KeepAlive {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(private readonly deps: { auth?: DelegatedAuth; notifier: Notifier; log: Logger; intervalMs?: number }) {}

  /** One pass: keep-alive refresh if due, then notification reminders and retries. */
  tick(): Promise<void> {
    this.running ??= (async () => {
      if (this.deps.auth) {
        try {
          const outcome = await this.deps.auth.keepAlive();
          if (outcome === 'refreshed') this.deps.log.info('keep-alive: the refresh token was renewed');
        } catch (error) {
          const e = error as AgentError;
          if (e instanceof AgentError && (e.code === 'AUTH_TRANSIENT' || e.code === 'LOCK_TIMEOUT')) this.deps.log.warn({ reason: e.message }, 'keep-alive refresh failed for now; retried on the next check');
          else this.deps.log.warn({ reason: e.message, code: e.code }, 'keep-alive refresh failed');
        }
      }
      await this.deps.notifier.tick();
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  start(): void {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.deps.intervalMs ?? KEEPALIVE_CHECK_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
