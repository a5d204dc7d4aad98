import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { AgentError } from '../config/errors.ts';
import type { RunCoordinator } from 'node-cron';
import type { Store } from '../store/index.ts';

/** Who holds a job, for the "busy" message only: exclusion is the store lock's, never this record's. */
interface HolderRecord {
  owner: string;
  holder: string;
  since: string;
}

/**
 * How long a second run waits for the job before it is refused as busy: long enough to ride out the store lock's
 * own start-up (SQLite reads the lock file's schema), far too short to queue behind a real run.
 */
const BUSY_WAIT_MS = 1_000;

/**
 * A per-job lock across every process sharing the store (an `npm start` and a `run` from a shell), so a job never
 * runs twice at once. It IS the store's cross-process lock (src/store/lock.ts), held for the whole run:
 * - SQLite: an exclusive transaction on a side file, dropped by the kernel when the holder dies (kill -9 included);
 * - PostgreSQL: a session advisory lock, dropped with the holder's connection;
 * - Redis: a lease the holder renews, lapsing within its lease (30 s) after the holder died.
 * So a crashed run frees the job as fast as the store frees its own lock, never after a lease of the job's own.
 * (It used to be a 10-minute record in the store that a kill -9'd holder kept: every run was refused meanwhile.)
 * Example: `const held = await lock.acquire('triage', runId); try { … } finally { await held.release(); }`.
 */
export class JobLock {
  private readonly process = `${hostname()} pid ${process.pid}`;

  constructor(private readonly store: Store, private readonly now: () => number = Date.now) {}

  async acquire(job: string, runId: string): Promise<{ release(): Promise<void> }> {
    const key = `lock:${job}`;
    let releaseStoreLock: () => Promise<void>;
    try {
      releaseStoreLock = await this.store.lock.acquire(`job:${job}`, { waitMs: BUSY_WAIT_MS });
    } catch (error) {
      if (!(error instanceof AgentError && error.code === 'LOCK_TIMEOUT')) throw error;
      const current = await this.store.get<HolderRecord>(key).catch(() => undefined);
      const who = current ? ` (${current.holder}, since ${current.since})` : '';
      throw new AgentError('JOB_BUSY', `The job "${job}" is already running in another process${who}.`, {
        remedy: 'Wait for that run to finish (its result shows in status). A crashed run frees the job by itself: at once on SQLite and PostgreSQL, within 30 s on Redis.',
        status: 409,
        cause: error,
      });
    }
    const owner = `${this.process}:${randomUUID().slice(0, 6)}:${runId}`;
    try {
      await this.store.set(key, { owner, holder: this.process, since: new Date(this.now()).toISOString() } satisfies HolderRecord);
    } catch (error) {
      await releaseStoreLock();
      throw error;
    }
    return {
      release: async () => {
        try {
          const still = await this.store.get<HolderRecord>(key);
          if (still?.owner === owner) await this.store.delete(key);
        } finally {
          await releaseStoreLock();
        }
      },
    };
  }
}

/** How long a fire's claim is remembered: far longer than instances' clocks differ, short enough not to pile up. */
const FIRE_CLAIM_MS = 10 * 60_000;

/**
 * Which instance runs a scheduled fire, when several share the store: the first to claim it, for node-cron's
 * `distributed` tasks (the key names the task and the fire's scheduled time). Without it both instances' ticks run
 * the job, one after the other, since the job lock only keeps runs from overlapping.
 * Example: `cron.schedule('*\/5 * * * *', fn, { distributed: true, runCoordinator: fireClaims(store) })`.
 */
export function fireClaims(store: Store): RunCoordinator {
  return {
    async shouldRun(key) {
      const release = await store.lock.acquire('fire-claims', { waitMs: 10_000 });
      try {
        if (await store.get(`fire:${key}`)) return false;
        await store.set(`fire:${key}`, { by: `${hostname()} pid ${process.pid}` }, FIRE_CLAIM_MS);
        return true;
      } finally {
        await release();
      }
    },
  };
}
