import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { AgentError } from '../config/errors.ts';
import type { Store } from '../store/index.ts';

interface LockRecord {
  owner: string;
  holder: string;
  until: number;
}

/** A crashed holder's lock expires after this long; a live holder renews it every third of it. */
export const LOCK_TTL_MS = 10 * 60_000;

/**
 * A per-job lock in the shared store, so two processes (an `npm start` and a `run` from a shell) never run
 * the same job at once: a record with an expiry (a crashed holder's lock lapses), checked and written under
 * the store's cross-process lock, renewed while the run goes on.
 * Example: `const held = await lock.acquire('triage', runId); try { … } finally { await held.release(); }`.
 */
export class JobLock {
  private readonly process = `${hostname()}:${process.pid}:${randomUUID().slice(0, 6)}`;

  constructor(private readonly store: Store, private readonly now: () => number = Date.now, private readonly options: { ttlMs?: number } = {}) {}

  async acquire(job: string, runId: string): Promise<{ release(): Promise<void> }> {
    const key = `lock:${job}`;
    const ttl = this.options.ttlMs ?? LOCK_TTL_MS;
    const owner = `${this.process}:${runId}`;
    const busy = (record: LockRecord) => new AgentError('JOB_BUSY', `The job "${job}" is already running in another process (${record.holder}) until at most ${new Date(record.until).toISOString()}.`, {
      remedy: 'Wait for that run to finish (its result shows in status); a crashed run\'s lock expires by itself.', status: 409,
    });
    const mine: LockRecord = { owner, holder: this.process.split(':').slice(0, 2).join(' pid '), until: this.now() + ttl };
    // Check-and-set under the store's own cross-process lock, so two processes cannot both take the job.
    const releaseStoreLock = await this.store.lock.acquire(`job:${job}`, { waitMs: 10_000 });
    try {
      const current = await this.store.get<LockRecord>(key);
      if (current && current.until > this.now() && current.owner !== owner) throw busy(current);
      await this.store.set(key, mine, ttl);
    } finally {
      await releaseStoreLock();
    }
    const renew = setInterval(() => {
      void this.store.set(key, { ...mine, until: this.now() + ttl }, ttl).catch(() => undefined);
    }, Math.max(1000, ttl / 3));
    renew.unref();
    return {
      release: async () => {
        clearInterval(renew);
        const still = await this.store.get<LockRecord>(key);
        if (still?.owner === owner) await this.store.delete(key);
      },
    };
  }
}
