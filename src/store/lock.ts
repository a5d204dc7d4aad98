import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
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
  /**
   * Who it excludes: `store`, every process sharing the store, on any host (Redis, PostgreSQL);
   * `machine`, every process on this machine sharing the file (SQLite); `process`, this process only.
   */
  readonly scope: 'store' | 'machine' | 'process';
  /**
   * Waits up to `waitMs` for the named lock. Throws AgentError LOCK_TIMEOUT if it stays held;
   * the caller must then NOT do the guarded work.
   */
  acquire(name: string, options?: { waitMs?: number }): Promise<ReleaseLock>;
  /** Gives back what is still held and closes the lock's own connections (the store's close calls it). */
  close?(): Promise<void>;
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
        // Reading the lock file's schema waits for the holder too: still busy at the deadline is a held lock, not a broken file.
        if (isBusy(error)) throw timeout(name, waitMs, file);
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

/** How long a Redis lease lives without renewal: what a holder killed with -9 keeps the lock for, at most. */
export const REDIS_LEASE_MS = 30_000;

/** Renews the lease only while it is still ours (it may have expired and been taken by another process). */
const RENEW_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
/** Deletes the lease only while it is still ours, never another holder's. */
const RELEASE_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/** The part of @redis/client's client that the lock uses. */
interface RedisLockClient {
  isOpen: boolean;
  connect(): Promise<unknown>;
  set(key: string, value: string, options: { condition: 'NX'; expiration: { type: 'PX'; value: number } }): Promise<string | null>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  close(): Promise<unknown>;
  destroy(): void;
}

/**
 * Options for every Redis client of the agent (the store's and the lock's): fail fast instead of queueing
 * commands forever while the server is away (the store reports STORE_ERROR and the agent retries later), and
 * give up reconnecting after a few tries (the next command connects afresh).
 */
export function redisClientOptions(url: string) {
  return {
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 10_000,
      reconnectStrategy: (retries: number, cause: Error) => (retries >= 4 ? cause : Math.min(100 * 2 ** retries, 2000) + Math.random() * 100),
    },
  };
}

/**
 * The lock of a Redis store: a lease `SET <prefix>:lock:<name> <random token> NX PX <leaseMs>`.
 * - The holder renews it every third of `leaseMs` (a Lua compare-and-PEXPIRE: only while the value is still its
 *   own token) and gives it back with a Lua compare-and-DEL, so it never deletes a lease another process took.
 * - A holder that dies (kill -9 included) stops renewing; the lease expires after at most `leaseMs`.
 * - Waiters poll with jitter until `waitMs`, then throw LOCK_TIMEOUT.
 * Every process that shares the Redis server shares the lock, on any host. One dedicated connection per store.
 * Example: `const release = await redisLock('redis://127.0.0.1:6379').acquire('auth-refresh');`.
 */
export function redisLock(url: string, options: { leaseMs?: number; prefix?: string } = {}): StoreLock {
  const leaseMs = options.leaseMs ?? REDIS_LEASE_MS;
  const prefix = options.prefix ?? 'mailbox-agent';
  let current: RedisLockClient | undefined;
  let connecting: Promise<RedisLockClient> | undefined;
  const held = new Set<ReleaseLock>();

  const connect = async (): Promise<RedisLockClient> => {
    const { createClient } = await import('@keyv/redis');
    const c = createClient(redisClientOptions(url)) as unknown as RedisLockClient;
    // Without a listener an 'error' event would end the process; the failing command reports it instead.
    c.on('error', () => undefined);
    try {
      await c.connect();
    } catch (cause) {
      // Usually closed already, having given up reconnecting.
      if (c.isOpen) c.destroy();
      throw storeError('reach Redis', cause);
    }
    return c;
  };
  /** The lock's own client: connected on first use, and afresh when it gave up reconnecting after an outage. */
  const connected = async (): Promise<RedisLockClient> => {
    if (current?.isOpen) return current;
    connecting ??= connect()
      .then((c) => (current = c))
      .finally(() => (connecting = undefined));
    return connecting;
  };

  return {
    scope: 'store',
    async acquire(name, acquireOptions = {}) {
      const waitMs = acquireOptions.waitMs ?? DEFAULT_WAIT_MS;
      const deadline = Date.now() + waitMs;
      const key = `${prefix}:lock:${name}`;
      const token = `${hostname()}:${process.pid}:${randomUUID()}`;
      const c = await connected();
      for (;;) {
        let answer: string | null;
        try {
          answer = await c.set(key, token, { condition: 'NX', expiration: { type: 'PX', value: leaseMs } });
        } catch (cause) {
          throw storeError(`take the lock ${key}`, cause);
        }
        if (answer === 'OK') break;
        if (Date.now() >= deadline) throw timeout(name, waitMs, `Redis key ${key}`);
        await sleep(POLL_MS + Math.random() * POLL_MS);
      }
      const args = { keys: [key], arguments: [token, String(leaseMs)] };
      // A failed renewal is retried on the next tick; if the lease is gone for good it is simply not renewed.
      const renew = setInterval(() => void c.eval(RENEW_SCRIPT, args).catch(() => undefined), Math.max(10, Math.floor(leaseMs / 3)));
      renew.unref();
      let released = false;
      const release: ReleaseLock = async () => {
        if (released) return;
        released = true;
        clearInterval(renew);
        held.delete(release);
        // If Redis cannot be reached now, the lease expires by itself within leaseMs.
        await c.eval(RELEASE_SCRIPT, { keys: [key], arguments: [token] }).catch(() => undefined);
      };
      held.add(release);
      return release;
    },
    async close() {
      for (const release of [...held]) await release();
      await connecting?.catch(() => undefined);
      const c = current;
      current = undefined;
      if (c?.isOpen) await c.close().catch(() => c.isOpen && c.destroy());
    },
  };
}

/**
 * The lock of a PostgreSQL store: a session-level advisory lock, `pg_try_advisory_lock` on a 64-bit key
 * (`hashtextextended('mailbox-agent:<name>', 0)`), held on a connection of its own for as long as the lock is.
 * - Waiters poll with jitter until `waitMs`, then throw LOCK_TIMEOUT.
 * - The server drops the lock the moment the holder's connection ends, so a holder killed with -9 frees it at once.
 * - One connection per held lock: advisory locks are re-entrant within a session, so two holders in one process
 *   sharing a connection would not exclude each other.
 * Example: `const release = await postgresLock('postgresql://agent@db/agent').acquire('auth-refresh');`.
 */
export function postgresLock(url: string): StoreLock {
  type PgClient = import('pg').Client;
  const open = new Set<PgClient>();
  return {
    scope: 'store',
    async acquire(name, options = {}) {
      const waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
      const deadline = Date.now() + waitMs;
      const lockName = `mailbox-agent:${name}`;
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: `mailbox-agent lock ${name}` });
      // A dropped connection also drops the lock; without a listener the 'error' event would end the process.
      client.on('error', () => undefined);
      const end = () => client.end().catch(() => undefined);
      try {
        await client.connect();
      } catch (cause) {
        await end();
        throw storeError('reach PostgreSQL', cause);
      }
      try {
        for (;;) {
          const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [lockName]);
          if (rows[0]?.ok) break;
          if (Date.now() >= deadline) throw timeout(name, waitMs, `PostgreSQL advisory lock "${lockName}"`);
          await sleep(POLL_MS + Math.random() * POLL_MS);
        }
      } catch (error) {
        await end();
        if (error instanceof AgentError) throw error;
        throw storeError(`take the advisory lock "${lockName}"`, error);
      }
      open.add(client);
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        open.delete(client);
        // Ending the session would release it too; unlocking first says so plainly in the server's log.
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lockName]).catch(() => undefined);
        await end();
      };
    },
    async close() {
      for (const client of [...open]) await client.end().catch(() => undefined);
      open.clear();
    },
  };
}

function storeError(what: string, cause: unknown): AgentError {
  return new AgentError('STORE_ERROR', `The store's lock could not ${what}: ${describe(cause)}`, {
    remedy: 'Check STORE_URL (host, port, user, password, database) and that the server it names is running and reachable.',
    cause,
  });
}

/** A readable reason; Node's AggregateError (every address of "localhost" refused) has an empty message. */
function describe(cause: unknown): string {
  const error = cause as { message?: string; code?: string; errors?: { message?: string }[] };
  return error.message || error.errors?.map((e) => e.message).join('; ') || error.code || String(cause);
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
