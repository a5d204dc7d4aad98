import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { AgentError } from '../config/errors.ts';

/** Gives the lock back. Safe to call twice. */
export type ReleaseLock = () => Promise<void>;

/**
 * A mutual-exclusion lock shared by every process that uses the same store.
 * The refresh token is the one thing two processes must never spend at the same time
 * (a provider that detects reuse revokes the whole grant), so `DelegatedAuth` refreshes under it.
 */
export interface StoreLock {
  /** Who it excludes: every process on this machine sharing the file, or this process only. */
  readonly scope: 'machine' | 'process';
  /**
   * Waits up to `waitMs` for the named lock. Throws AgentError LOCK_TIMEOUT if it stays held;
   * the caller must then NOT do the guarded work.
   */
  acquire(name: string, options?: { waitMs?: number }): Promise<ReleaseLock>;
}

const DEFAULT_WAIT_MS = 60_000;
const POLL_MS = 20;

function timeout(name: string, waitMs: number, where: string): AgentError {
  return new AgentError('LOCK_TIMEOUT', `Another process held the "${name}" lock (${where}) for more than ${Math.round(waitMs / 1000)} s, so this one did not go ahead.`, {
    remedy: 'Nothing to do if it passes: the agent retries. If it persists, look for a hung mailbox-agent process (a crashed one releases the lock by itself).',
  });
}

/**
 * The lock beside a SQLite store: an exclusive transaction on a small SQLite file next to the database
 * (`agent.sqlite.lock-<name>`). Why this and not a lock file with O_EXCL:
 * - SQLite takes a POSIX advisory lock on the file for the transaction; the kernel drops it when the
 *   holder's process dies (kill -9 included), so a crashed process can never leave it held, and no
 *   stale-lock heuristics (pid alive? how old?) can ever hand it to two processes at once.
 * - A live but hung holder keeps it; waiters then give up after `waitMs` with LOCK_TIMEOUT and do not refresh.
 * - It works for any number of processes on one machine, which is what sharing a SQLite file means.
 * Its own file, because holding an exclusive transaction on the store's file would block the holder's own writes.
 */
export function sqliteLock(databaseFile: string): StoreLock {
  mkdirSync(path.dirname(databaseFile), { recursive: true });
  return {
    scope: 'machine',
    async acquire(name, options = {}) {
      const file = `${databaseFile}.lock-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
      const waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
      const { default: sqlite3 } = await import('sqlite3');
      const db = await new Promise<InstanceType<typeof sqlite3.Database>>((resolve, reject) => {
        const d = new sqlite3.Database(file, (error) => (error ? reject(error) : resolve(d)));
      });
      const exec = (sql: string) => new Promise<void>((resolve, reject) => db.exec(sql, (error) => (error ? reject(error) : resolve())));
      const close = () => new Promise<void>((resolve) => db.close(() => resolve()));
      try {
        // A table to write into, so the transaction holds a real write lock and says who holds it.
        await execRetrying(exec, 'CREATE TABLE IF NOT EXISTS holder (pid INTEGER, since TEXT)', Date.now() + waitMs);
        const deadline = Date.now() + waitMs;
        for (;;) {
          try {
            await exec('BEGIN EXCLUSIVE');
            break;
          } catch (error) {
            if (!isBusy(error)) throw error;
            if (Date.now() >= deadline) throw timeout(name, waitMs, file);
            await sleep(POLL_MS + Math.random() * POLL_MS);
          }
        }
        await exec(`DELETE FROM holder; INSERT INTO holder VALUES (${process.pid}, '${new Date().toISOString()}')`);
      } catch (error) {
        await close();
        if (error instanceof AgentError) throw error;
        throw new AgentError('STORE_ERROR', `The lock file ${file} could not be used: ${(error as Error).message}`, {
          remedy: 'Check that the data directory is writable and on a local disk.',
          cause: error,
        });
      }
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        // Closing ends the transaction (rolled back: the holder row was only for the curious).
        await exec('ROLLBACK').catch(() => undefined);
        await close();
      };
    },
  };
}

/** A lock within this process only: for the in-memory store, which no other process can share. */
export function processLock(): StoreLock {
  const tails = new Map<string, Promise<void>>();
  return {
    scope: 'process',
    async acquire(name, options = {}) {
      const previous = tails.get(name) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((resolve) => (release = resolve));
      const tail = previous.then(() => mine);
      tails.set(name, tail);
      const waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        previous.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), waitMs);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        // Give our turn away at once so those behind us are not held up by a waiter that left.
        release();
        throw timeout(name, waitMs, 'this process');
      }
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        release();
        if (tails.get(name) === tail) tails.delete(name);
      };
    },
  };
}

async function execRetrying(exec: (sql: string) => Promise<void>, sql: string, deadline: number): Promise<void> {
  for (;;) {
    try {
      return await exec(sql);
    } catch (error) {
      if (!isBusy(error) || Date.now() >= deadline) throw error;
      await sleep(POLL_MS);
    }
  }
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
