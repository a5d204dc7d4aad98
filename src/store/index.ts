import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Keyv, { type KeyvStoreAdapter } from 'keyv';
import { AgentError } from '../config/errors.ts';
import { isSealed, open, seal } from './crypto.ts';
import { postgresLock, processLock, redisClientOptions, redisLock, sqliteLock, type StoreLock } from './lock.ts';

export { loadOrCreateTokenKey } from './crypto.ts';
export { postgresLock, processLock, redisLock, sqliteLock, type StoreLock, type ReleaseLock } from './lock.ts';

const NAMESPACE = 'mailbox-agent';

/**
 * The agent's persistent state behind a small contract (get/set/delete), on any keyv backend.
 * Secrets go through `getSecret`/`setSecret`, which encrypt with AES-256-GCM; nothing readable
 * about a token is ever handed to the backend.
 */
export interface Store {
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  /** Several keys in one round trip (one query on SQLite, Redis and PostgreSQL), in the order asked. */
  getMany<T>(keys: string[]): Promise<(T | undefined)[]>;
  /**
   * Several entries in one write: on SQLite one statement, so one transaction and one fsync instead of one
   * per entry (a 1000-message page's ledger in ~20 ms instead of ~1.3 s); all or none are written there.
   */
  setMany<T>(entries: { key: string; value: T; ttlMs?: number }[]): Promise<void>;
  delete(key: string): Promise<void>;
  getSecret<T>(key: string): Promise<T | undefined>;
  setSecret<T>(key: string, value: T): Promise<void>;
  /** Mutual exclusion across every process that shares this store (see lock.ts for how, per backend). */
  readonly lock: StoreLock;
  close(): Promise<void>;
}

/**
 * Opens the store named by a keyv URI. `sqlite://data/agent.sqlite` is relative to `cwd`.
 * Example: `const store = await openStore('sqlite://data/agent.sqlite', key)`.
 */
export async function openStore(url: string, tokenKey: Buffer, options: { cwd?: string } = {}): Promise<Store> {
  const cwd = options.cwd ?? process.cwd();
  const { adapter, prefixesKeys } = await createAdapter(url, cwd);
  // Keys are `mailbox-agent:<key>` on every backend: Keyv prefixes them, unless the adapter does it itself
  // (@keyv/redis), where a Keyv prefix too would double it.
  const keyv = new Keyv({ store: adapter, namespace: NAMESPACE, useKeyPrefix: !prefixesKeys, throwOnErrors: true });
  return keyvStore(keyv, tokenKey, lockFor(url, cwd));
}

/**
 * The cross-process lock, by backend (see lock.ts for each):
 * - SQLite: an exclusive transaction on a file beside the database (released by the kernel if the holder dies);
 * - Redis: a lease key with a random token, renewed while held, expiring if the holder dies;
 * - PostgreSQL: a session-level advisory lock on a connection of its own (dropped with the connection);
 * - in memory: this process only, as no other process can share that store.
 */
function lockFor(url: string, cwd: string): StoreLock {
  const scheme = schemeOf(url);
  if (scheme === 'redis' || scheme === 'rediss') return redisLock(url, { prefix: NAMESPACE });
  if (scheme === 'postgres' || scheme === 'postgresql') return postgresLock(url);
  const file = sqliteFile(url, cwd);
  return file && file !== ':memory:' ? sqliteLock(file) : processLock();
}

function schemeOf(url: string): string {
  return url.slice(0, url.indexOf(':')).toLowerCase();
}

function sqliteFile(url: string, cwd: string): string | undefined {
  if (!/^sqlite:/i.test(url)) return undefined;
  const file = url.replace(/^sqlite:\/\//i, '');
  return file === ':memory:' ? file : path.resolve(cwd, file);
}

/** An in-memory store, for tests and dry experiments. */
export function memoryStore(tokenKey: Buffer): Store {
  return keyvStore(new Keyv({ namespace: 'mailbox-agent' }), tokenKey, processLock());
}

function keyvStore(keyv: Keyv, tokenKey: Buffer, lock: StoreLock): Store {
  const wrap = async <T>(what: string, op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (cause) {
      if (cause instanceof AgentError) throw cause;
      throw new AgentError('STORE_ERROR', `The store could not ${what}: ${(cause as Error).message}`, {
        remedy: 'Check STORE_URL, that the store is reachable, and that the disk is not full.',
        cause,
      });
    }
  };
  return {
    get: (key) => wrap(`read ${key}`, () => keyv.get(key)),
    set: (key, value, ttlMs) => wrap(`write ${key}`, async () => void (await keyv.set(key, value, ttlMs))),
    getMany: <T>(keys: string[]) => wrap(`read ${keys.length} keys`, async () => (keys.length ? ((await keyv.getMany<T>(keys)) as (T | undefined)[]) : [])),
    setMany: (entries) => wrap(`write ${entries.length} keys`, async () => {
      if (entries.length === 0) return;
      const results = (await keyv.setMany(entries.map((e) => ({ key: e.key, value: e.value, ttl: e.ttlMs })))) as unknown;
      // Keyv reports a failed entry as `false` rather than throwing on some backends.
      if (Array.isArray(results) && results.some((r) => r === false)) throw new Error('the backend refused some of the entries');
    }),
    delete: (key) => wrap(`delete ${key}`, async () => void (await keyv.delete(key))),
    getSecret: async <T>(key: string) => {
      const sealed = await wrap(`read ${key}`, () => keyv.get(key));
      if (sealed === undefined) return undefined;
      if (!isSealed(sealed)) throw new AgentError('STORE_ERROR', `The stored secret ${key} is not encrypted as expected.`, { remedy: 'Run `mailbox-agent signout` and sign in again.' });
      return JSON.parse(open(tokenKey, sealed, key)) as T;
    },
    setSecret: (key, value) => wrap(`write ${key}`, async () => void (await keyv.set(key, seal(tokenKey, JSON.stringify(value), key)))),
    lock,
    close: () => wrap('close', async () => {
      try {
        await keyv.disconnect();
      } finally {
        await lock.close?.();
      }
    }),
  };
}

type Adapter = KeyvStoreAdapter | Map<unknown, unknown>;

/**
 * @keyv/sqlite has no setMany, so Keyv would issue one INSERT per entry, each its own transaction with its own
 * fsync. This adds one: a single upsert of every entry from a JSON array, one transaction.
 * (The `WHERE true` is what SQLite's grammar needs for an upsert from a SELECT [sqlite.org lang_upsert].)
 */
function withSqliteSetMany<A extends KeyvStoreAdapter & { query: (sql: string, ...params: unknown[]) => Promise<unknown>; opts: { table?: string } }>(adapter: A): A {
  const table = adapter.opts.table ?? 'keyv';
  Object.assign(adapter, {
    async setMany(entries: { key: string; value: unknown }[]): Promise<boolean[]> {
      if (entries.length === 0) return [];
      await adapter.query(
        `INSERT INTO ${table} (key, value) SELECT json_extract(e.value, '$[0]'), json_extract(e.value, '$[1]') FROM json_each(?) AS e WHERE true ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
        JSON.stringify(entries.map((e) => [e.key, e.value])),
      );
      return entries.map(() => true);
    },
  });
  return adapter;
}

async function createAdapter(url: string, cwd: string): Promise<{ adapter: Adapter; prefixesKeys: boolean }> {
  const scheme = schemeOf(url);
  if (scheme === 'sqlite') {
    const resolved = sqliteFile(url, cwd)!;
    if (resolved !== ':memory:') mkdirSync(path.dirname(resolved), { recursive: true });
    const { default: KeyvSqlite } = await import('@keyv/sqlite');
    // busyTimeout: the web server and a CLI `run` share one file; wait for the other's write instead of failing.
    const adapter = new KeyvSqlite({ uri: `sqlite://${resolved}`, busyTimeout: 10_000 });
    return { adapter: withSqliteSetMany(adapter), prefixesKeys: false };
  }
  if (scheme === 'memory') return { adapter: new Map(), prefixesKeys: false };
  if (scheme === 'redis' || scheme === 'rediss') return { adapter: await redisAdapter(url), prefixesKeys: true };
  if (scheme === 'postgres' || scheme === 'postgresql') return { adapter: await postgresAdapter(url), prefixesKeys: false };
  throw new AgentError('CONFIG_INVALID', `STORE_URL uses "${scheme}://", which the agent does not know.`, {
    remedy: 'Use sqlite://path, redis://host:port or postgresql://user@host/db.',
  });
}

/**
 * @keyv/redis on a client of our own options (fail fast while Redis is away, instead of waiting forever), with
 * `throwOnErrors` on the adapter too: by default it turns a failed read into "no such key", which would look
 * like a signed-out account.
 */
async function redisAdapter(url: string): Promise<KeyvStoreAdapter> {
  const { default: KeyvRedis, createClient } = await import('@keyv/redis');
  const client = createClient(redisClientOptions(url));
  const adapter = new KeyvRedis(client, { namespace: NAMESPACE, keyPrefixSeparator: ':', throwOnErrors: true });
  await adoptDoublePrefixedKeys(client as unknown as RedisScanClient);
  return adapter as unknown as KeyvStoreAdapter;
}

interface RedisScanClient {
  isOpen: boolean;
  connect(): Promise<unknown>;
  scan(cursor: string, options: { MATCH: string; COUNT: number }): Promise<{ cursor: string; keys: string[] }>;
  renameNX(key: string, newKey: string): Promise<unknown>;
}

/**
 * Before the agent made @keyv/redis its own dependency, its keys were prefixed twice (`mailbox-agent::mailbox-agent:<key>`,
 * the adapter's prefix and Keyv's). Renames them to `mailbox-agent:<key>` once (never over a newer key), so
 * an existing Redis store keeps its sign-in and job state. Best effort: if Redis is not reachable now, the next
 * start does it, and reads meanwhile fail with STORE_ERROR anyway.
 */
async function adoptDoublePrefixedKeys(client: RedisScanClient): Promise<void> {
  const legacy = `${NAMESPACE}::${NAMESPACE}:`;
  try {
    if (!client.isOpen) await client.connect();
    let cursor = '0';
    do {
      const page = await client.scan(cursor, { MATCH: `${legacy}*`, COUNT: 500 });
      cursor = String(page.cursor);
      for (const key of page.keys) await client.renameNX(key, `${NAMESPACE}:${key.slice(legacy.length)}`);
    } while (cursor !== '0');
  } catch {
    // Not reachable now: see above.
  }
}

/**
 * @keyv/postgres on a pool of its own. The adapter's default pool is one per module, ended by any instance's
 * disconnect (closing one store would break every other store of the process), and it has no 'error'
 * listener (an idle connection dropped by the server would end the process).
 */
async function postgresAdapter(url: string): Promise<KeyvStoreAdapter> {
  const [{ default: KeyvPostgres }, { default: pg }] = await Promise.all([import('@keyv/postgres'), import('pg')]);
  const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: 10_000, max: 4 });
  pool.on('error', () => undefined);
  class OwnPool extends KeyvPostgres {
    override async connect() {
      return async (sql: string, values?: unknown[]) => (await pool.query(sql, values)).rows;
    }
    override async disconnect() {
      await pool.end();
    }
  }
  return new OwnPool({ uri: url });
}
