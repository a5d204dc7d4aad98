import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Keyv, { type KeyvStoreAdapter } from 'keyv';
import { AgentError } from '../config/errors.ts';
import { isSealed, open, seal } from './crypto.ts';
import { processLock, sqliteLock, type StoreLock } from './lock.ts';

export { loadOrCreateTokenKey } from './crypto.ts';
export { processLock, sqliteLock, type StoreLock, type ReleaseLock } from './lock.ts';

/**
 * The agent's persistent state behind a small contract (get/set/delete), on any keyv backend.
 * Secrets go through `getSecret`/`setSecret`, which encrypt with AES-256-GCM; nothing readable
 * about a token is ever handed to the backend.
 */
export interface Store {
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
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
  const adapter = await createAdapter(url, cwd);
  const keyv = new Keyv({ store: adapter, namespace: 'mailbox-agent', useKeyPrefix: true, throwOnErrors: true });
  return keyvStore(keyv, tokenKey, lockFor(url, cwd));
}

/**
 * SQLite: an exclusive transaction on a file beside the database (released by the kernel if the holder dies).
 * Redis and Postgres have no such file; keyv offers no compare-and-set to build one on, so there the lock
 * covers this process only, and its `scope` says so (the runtime warns at start).
 */
function lockFor(url: string, cwd: string): StoreLock {
  const file = sqliteFile(url, cwd);
  return file && file !== ':memory:' ? sqliteLock(file) : processLock();
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
    delete: (key) => wrap(`delete ${key}`, async () => void (await keyv.delete(key))),
    getSecret: async <T>(key: string) => {
      const sealed = await wrap(`read ${key}`, () => keyv.get(key));
      if (sealed === undefined) return undefined;
      if (!isSealed(sealed)) throw new AgentError('STORE_ERROR', `The stored secret ${key} is not encrypted as expected.`, { remedy: 'Run `mailbox-agent signout` and sign in again.' });
      return JSON.parse(open(tokenKey, sealed, key)) as T;
    },
    setSecret: (key, value) => wrap(`write ${key}`, async () => void (await keyv.set(key, seal(tokenKey, JSON.stringify(value), key)))),
    lock,
    close: () => wrap('close', () => keyv.disconnect()),
  };
}

async function createAdapter(url: string, cwd: string): Promise<KeyvStoreAdapter | Map<unknown, unknown>> {
  const scheme = url.slice(0, url.indexOf(':')).toLowerCase();
  if (scheme === 'sqlite') {
    const resolved = sqliteFile(url, cwd)!;
    if (resolved !== ':memory:') mkdirSync(path.dirname(resolved), { recursive: true });
    const { default: KeyvSqlite } = await import('@keyv/sqlite');
    // busyTimeout: the web server and a CLI `run` share one file; wait for the other's write instead of failing.
    return new KeyvSqlite({ uri: `sqlite://${resolved}`, busyTimeout: 10_000 });
  }
  if (scheme === 'memory') return new Map();
  const pkg = scheme === 'redis' || scheme === 'rediss' ? '@keyv/redis' : scheme.startsWith('postgres') ? '@keyv/postgres' : undefined;
  if (!pkg) {
    throw new AgentError('CONFIG_INVALID', `STORE_URL uses "${scheme}://", which the agent does not know.`, {
      remedy: 'Use sqlite://path, redis://host:port or postgresql://user@host/db.',
    });
  }
  try {
    const mod = (await import(pkg)) as { default: new (uri: string) => KeyvStoreAdapter };
    return new mod.default(url);
  } catch (cause) {
    throw new AgentError('CONFIG_INVALID', `STORE_URL needs the package ${pkg}, which is not installed.`, {
      remedy: `Run: npm install ${pkg}`,
      cause,
    });
  }
}
