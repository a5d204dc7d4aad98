import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';
import { startPostgres, startRedis, type TestServer } from '../helpers/servers.ts';
import { raceChildren, spawnTokenChild } from './token-processes.ts';

/**
 * Two real processes share a store (the SQLite file, or a Redis or PostgreSQL server started here) and force a
 * refresh at the same moment, many times, against a sandbox that revokes the whole grant when a rotated refresh
 * token is presented again (reuse detection). The store's lock (an exclusive transaction on a side file, a Redis
 * lease, a PostgreSQL advisory lock) lets one refresh at a time; the other uses the token just rotated.
 * Without it the grant dies.
 */
for (const backend of ['sqlite', 'redis', 'postgres'] as const) {
  describe(`two processes on a ${backend} store never spend one refresh token twice`, () => {
    let server: TestServer | undefined;
    let h: Harness;
    before(async () => {
      server = backend === 'redis' ? await startRedis() : backend === 'postgres' ? await startPostgres() : undefined;
      h = await startHarness(server ? { env: { STORE_URL: server.url } } : {});
      h.sandbox.admin.setRevokeOnReuse(true);
    });
    after(async () => {
      await h?.close();
      await server?.stop();
    });

    test('the runtime knows this store is locked across processes, and does not warn', () => {
      assert.equal(h.rt.store.lock.scope, backend === 'sqlite' ? 'machine' : 'store');
      assert.deepEqual(h.logs.filter((l) => /no lock across processes/.test(l)), []);
    });

    test('with the store lock: 25 simultaneous forced refreshes from each of two processes; the grant survives', async () => {
      await signIn(h);
      const children = [spawnTokenChild(h, { MODE: 'race' }), spawnTokenChild(h, { MODE: 'race' })];
      try {
        await Promise.all(children.map((c) => c.next(/^ready/)));
        const before = h.sandbox.admin.tokenRequests().filter((r) => r.grantType === 'refresh_token').length;
        const outcomes = await raceChildren(children, 25);
        assert.deepEqual(outcomes.filter((o) => o.startsWith('err')), [], 'no process failed');
        const reused = outcomes.filter((o) => o === 'ok reused').length;
        const refreshed = outcomes.filter((o) => o === 'ok refreshed').length;
        assert.equal(reused + refreshed, 50);
        assert.ok(reused > 0, 'a process that waited for the lock used the token the other one had just rotated');
        const requests = h.sandbox.admin.tokenRequests().filter((r) => r.grantType === 'refresh_token').slice(before);
        assert.equal(requests.length, refreshed, 'one token request per refresh, none for a reuse');
        assert.deepEqual(requests.filter((r) => r.status !== 200), [], 'the sandbox never saw a refresh token twice');
      } finally {
        await Promise.all(children.map((c) => c.kill()));
      }
      // The grant is alive: this process can still refresh with what the others left in the store.
      await h.rt.auth.getAccessToken({ forceRefresh: true });
      assert.equal((await h.rt.auth.status()).state, 'ready');
    });

    test('negative control: without the store lock the same race revokes the grant (AADSTS70008)', async () => {
      await signIn(h);
      const children = [spawnTokenChild(h, { MODE: 'race', NO_LOCK: '1' }), spawnTokenChild(h, { MODE: 'race', NO_LOCK: '1' })];
      try {
        await Promise.all(children.map((c) => c.next(/^ready/)));
        const outcomes = await raceChildren(children, 25, true);
        assert.ok(outcomes.some((o) => /^err .*AADSTS70008/.test(o)), `expected a revoked grant, got ${outcomes.join(', ')}`);
      } finally {
        await Promise.all(children.map((c) => c.kill()));
      }
      // The grant is dead (what the store says about it depends on how the unlocked writes interleaved).
      await assert.rejects(h.rt.auth.getAccessToken({ forceRefresh: true }), (error: Error & { code?: string }) => ['NEEDS_SIGNIN', 'SIGNED_OUT'].includes(error.code ?? ''));
      assert.notEqual((await h.rt.auth.status()).state, 'ready');
    });
  });
}
