/**
 * The Redis and PostgreSQL stores and their cross-process locks, against real throwaway servers
 * (test/helpers/servers.ts; the test fails if redis-server or PostgreSQL is not installed).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { REPO } from '../helpers/harness.ts';
import { startPostgres, startRedis, type TestServer } from '../helpers/servers.ts';
import { checkGetSetMany } from '../helpers/store-contract.ts';
import { openStore, postgresLock, redisLock, type StoreLock } from '../../src/store/index.ts';

const LEASE_MS = 1000;
const isCode = (code: string) => (error: Error & { code?: string }) => error.code === code;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let redis: TestServer;
let postgres: TestServer;
before(async () => {
  [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
});
after(async () => {
  await Promise.all([redis?.stop(), postgres?.stop()]);
});

/** Raw access to what the store wrote, to check key names and that secrets are not in clear. */
async function rawRedis(url: string) {
  const { createClient } = await import('@keyv/redis');
  const client = createClient({ url });
  await client.connect();
  return client;
}
async function rawPostgres(url: string) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

describe('Redis and PostgreSQL stores through keyv', () => {
  for (const backend of ['redis', 'postgres'] as const) {
    const url = () => (backend === 'redis' ? redis.url : postgres.url);

    test(`${backend}: get, set with a TTL, delete, sealed secrets, keys named mailbox-agent:<key>`, async () => {
      const key = randomBytes(32);
      const store = await openStore(url(), key);
      try {
        await store.set('job:triage:delta', { link: 'https://graph/x' });
        await store.set('short', 1, 150);
        await store.setSecret('auth:tokens', { refreshToken: 'RT-super-secret-value' });
        assert.deepEqual(await store.get('job:triage:delta'), { link: 'https://graph/x' });
        assert.equal(await store.get('short'), 1);
        assert.deepEqual(await store.getSecret('auth:tokens'), { refreshToken: 'RT-super-secret-value' });
        await sleep(250);
        assert.equal(await store.get('short'), undefined, 'the TTL expired');
        await store.delete('job:triage:delta');
        assert.equal(await store.get('job:triage:delta'), undefined);

        let raw: string | undefined;
        if (backend === 'redis') {
          const client = await rawRedis(url());
          assert.deepEqual((await client.keys('*')).filter((k) => !k.includes(':lock:')), ['mailbox-agent:auth:tokens']);
          raw = (await client.get('mailbox-agent:auth:tokens')) ?? undefined;
          client.destroy();
        } else {
          const client = await rawPostgres(url());
          const { rows } = await client.query<{ key: string; value: string }>('SELECT key, value FROM keyv');
          assert.deepEqual(rows.map((r) => r.key), ['mailbox-agent:auth:tokens']);
          raw = rows[0]?.value;
          await client.end();
        }
        assert.ok(raw && !raw.includes('RT-super-secret-value'), 'the refresh token is not in the server in clear');
        await store.delete('auth:tokens');
      } finally {
        await store.close();
      }
    });

    test(`${backend}: getMany / setMany`, async () => {
      const store = await openStore(url(), randomBytes(32));
      try {
        await checkGetSetMany(store);
      } finally {
        await store.close();
      }
    });

    test(`${backend}: two stores in one process; closing one leaves the other working`, async () => {
      const a = await openStore(url(), Buffer.alloc(32, 1));
      const b = await openStore(url(), Buffer.alloc(32, 1));
      await a.set('shared', 'from a');
      assert.equal(await b.get('shared'), 'from a');
      await a.close();
      await b.set('shared', 'from b');
      assert.equal(await b.get('shared'), 'from b');
      await b.delete('shared');
      await b.close();
    });
  }

  test('redis: keys an older version wrote twice-prefixed (mailbox-agent::mailbox-agent:<key>) are adopted at open', async () => {
    const { default: Keyv } = await import('keyv');
    const { default: KeyvRedis } = await import('@keyv/redis');
    // How the store was opened before: Keyv's prefix and the adapter's.
    const oldStyle = async (key: string, value: unknown) => {
      const old = new Keyv({ store: new KeyvRedis(redis.url), namespace: 'mailbox-agent', useKeyPrefix: true });
      await old.set(key, value);
      await old.disconnect();
    };
    const client = await rawRedis(redis.url);
    try {
      await oldStyle('job:legacy:delta', { link: 'https://graph/old' });
      assert.equal(await client.exists('mailbox-agent::mailbox-agent:job:legacy:delta'), 1);
      let store = await openStore(redis.url, Buffer.alloc(32, 1));
      assert.deepEqual(await store.get('job:legacy:delta'), { link: 'https://graph/old' });
      assert.deepEqual(await client.keys('mailbox-agent::*'), []);
      await store.set('job:newer', 'new value');
      await store.close();
      // A stale twice-prefixed copy never overwrites a key written since under the new name.
      await oldStyle('job:newer', 'stale');
      store = await openStore(redis.url, Buffer.alloc(32, 1));
      assert.equal(await store.get('job:newer'), 'new value');
      await store.delete('job:legacy:delta');
      await store.delete('job:newer');
      await store.close();
    } finally {
      await client.del('mailbox-agent::mailbox-agent:job:newer');
      client.destroy();
    }
  });

  test('redis: a read while the server is down fails with STORE_ERROR (never "no such key")', async () => {
    const own = await startRedis();
    const store = await openStore(own.url, Buffer.alloc(32, 1));
    try {
      await store.setSecret('auth:tokens', { refreshToken: 'RT' });
      await own.stop();
      await assert.rejects(store.getSecret('auth:tokens'), (e: Error & { code?: string; remedy?: string }) => e.code === 'STORE_ERROR' && /STORE_URL/.test(e.remedy ?? ''));
    } finally {
      await store.close().catch(() => undefined);
      await own.stop();
    }
  });

  test('an unreachable server: the store and its lock fail with STORE_ERROR naming STORE_URL', async () => {
    const hasRemedy = (e: Error & { code?: string; remedy?: string }) => e.code === 'STORE_ERROR' && /STORE_URL/.test(e.remedy ?? '');
    await Promise.all(['redis://127.0.0.1:1', 'postgresql://postgres@127.0.0.1:1/postgres'].map(async (dead) => {
      const store = await openStore(dead, Buffer.alloc(32, 1));
      await Promise.all([
        assert.rejects(store.get('x'), hasRemedy, dead),
        assert.rejects(store.lock.acquire('x', { waitMs: 100 }), hasRemedy, dead),
      ]);
      await store.close().catch(() => undefined);
    }));
  });
});

describe('cross-process locks of the Redis and PostgreSQL stores', () => {
  const backends = [
    { name: 'redis', scope: 'store', make: () => redisLock(redis.url, { leaseMs: LEASE_MS }), url: () => redis.url },
    { name: 'postgres', scope: 'store', make: () => postgresLock(postgres.url), url: () => postgres.url },
  ] as const;

  for (const backend of backends) {
    test(`${backend.name}: two acquirers (each with its own connections) never hold the lock at once`, async () => {
      const locks: StoreLock[] = [backend.make(), backend.make()];
      assert.equal(locks[0]!.scope, 'store');
      let inside = 0;
      let most = 0;
      let entries = 0;
      const worker = async (lock: StoreLock) => {
        for (let i = 0; i < 8; i++) {
          const release = await lock.acquire('exclusion', { waitMs: 20_000 });
          inside += 1;
          most = Math.max(most, inside);
          entries += 1;
          await sleep(3);
          inside -= 1;
          await release();
        }
      };
      await Promise.all([worker(locks[0]!), worker(locks[1]!), worker(locks[0]!), worker(locks[1]!)]);
      assert.equal(entries, 32);
      assert.equal(most, 1, 'one holder at a time');
      await Promise.all(locks.map((l) => l.close?.()));
    });

    test(`${backend.name}: a waiter gets LOCK_TIMEOUT after waitMs; it gets the lock once released; release twice is safe`, async () => {
      const a = backend.make();
      const b = backend.make();
      const release = await a.acquire('timeout');
      // Longer than a Redis lease: the holder's renewals keep it.
      const started = Date.now();
      await assert.rejects(b.acquire('timeout', { waitMs: LEASE_MS * 1.5 }), isCode('LOCK_TIMEOUT'));
      assert.ok(Date.now() - started >= LEASE_MS * 1.5, 'it waited waitMs');
      const other = await b.acquire('another-name', { waitMs: 0 });
      await other();
      const waiting = b.acquire('timeout', { waitMs: 10_000 });
      await sleep(100);
      await release();
      await release();
      const second = await waiting;
      await second();
      await second();
      // And free again for anyone, at once.
      const third = await a.acquire('timeout', { waitMs: 0 });
      await third();
      await Promise.all([a.close?.(), b.close?.()]);
    });

    test(`${backend.name}: a holder killed with -9 loses the lock (${backend.name === 'redis' ? 'when its lease expires' : 'at once'})`, async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'test/store/lock-child.ts')], {
        cwd: REPO,
        env: { PATH: process.env.PATH ?? '', LOCK_URL: backend.url(), LEASE_MS: String(LEASE_MS), LOCK_NAME: 'killed' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const lock = backend.make();
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`the child never held the lock: ${stderr}`)), 20_000);
          createInterface({ input: child.stdout }).on('line', (l) => l === 'held' && (clearTimeout(timer), resolve()));
        });
        // Held across process boundaries, for longer than one lease.
        await assert.rejects(lock.acquire('killed', { waitMs: LEASE_MS * 1.5 }), isCode('LOCK_TIMEOUT'));
        child.kill('SIGKILL');
        await exited;
        const killedAt = Date.now();
        const release = await lock.acquire('killed', { waitMs: LEASE_MS * 5 });
        const freedAfter = Date.now() - killedAt;
        await release();
        // The server ends a dead client's session, and its advisory locks, as soon as the socket closes.
        if (backend.name === 'postgres') assert.ok(freedAfter < LEASE_MS, `freed at once (${freedAfter} ms)`);
        // The last renewal came at most a third of a lease before the kill: the lease lapses 2/3 to 1 lease later.
        else assert.ok(freedAfter >= LEASE_MS / 2 && freedAfter <= LEASE_MS * 2, `freed when the lease expired (${freedAfter} ms)`);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await lock.close?.();
      }
    });
  }

  test('closing the store gives back the locks it holds', async () => {
    for (const url of [redis.url, postgres.url]) {
      const store = await openStore(url, Buffer.alloc(32, 1));
      await store.lock.acquire('held-at-close');
      await store.close();
      const other = await openStore(url, Buffer.alloc(32, 1));
      const release = await other.lock.acquire('held-at-close', { waitMs: 0 });
      await release();
      await other.close();
    }
  });
});
