import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';
import { raceChildren as race, spawnTokenChild } from './token-processes.ts';

/**
 * Two real processes share the SQLite store and force a refresh at the same moment, many times, against a
 * sandbox that revokes the whole grant when a rotated refresh token is presented again (reuse detection).
 */
describe('two processes never spend one refresh token twice', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    h.sandbox.admin.setRevokeOnReuse(true);
  });
  after(() => h.close());

  test('with the store lock: 25 simultaneous forced refreshes from each of two processes; the grant survives', async () => {
    await signIn(h);
    const children = [spawnTokenChild(h, { MODE: 'race' }), spawnTokenChild(h, { MODE: 'race' })];
    try {
      await Promise.all(children.map((c) => c.next(/^ready/)));
      const refreshesBefore = h.sandbox.admin.tokenRequests().filter((r) => r.grantType === 'refresh_token').length;
      const outcomes = await race(children, 25);
      assert.deepEqual(outcomes.filter((o) => o.startsWith('err')), [], 'no process failed');
      const reused = outcomes.filter((o) => o === 'ok reused').length;
      const refreshed = outcomes.filter((o) => o === 'ok refreshed').length;
      assert.equal(reused + refreshed, 50);
      assert.ok(reused > 0, 'a process that waited for the lock used the token the other one had just rotated');
      const requests = h.sandbox.admin.tokenRequests().filter((r) => r.grantType === 'refresh_token').slice(refreshesBefore);
      assert.equal(requests.length, refreshed, 'one token request per refresh, none for a reuse');
      assert.deepEqual(requests.filter((r) => r.status !== 200), [], 'the sandbox never saw a refresh token twice');
    } finally {
      await Promise.all(children.map((c) => c.kill()));
    }
    // The grant is alive: this process can still refresh with what the others left in the store.
    await h.rt.auth.getAccessToken({ forceRefresh: true });
    assert.equal((await h.rt.auth.status()).state, 'ready');
  });

  test('negative control: without the cross-process lock the same race revokes the grant (AADSTS70008)', async () => {
    await signIn(h);
    const children = [spawnTokenChild(h, { MODE: 'race', NO_LOCK: '1' }), spawnTokenChild(h, { MODE: 'race', NO_LOCK: '1' })];
    try {
      await Promise.all(children.map((c) => c.next(/^ready/)));
      const outcomes = await race(children, 25, true);
      assert.ok(outcomes.some((o) => /^err .*AADSTS70008/.test(o)), `expected a revoked grant, got ${outcomes.join(', ')}`);
    } finally {
      await Promise.all(children.map((c) => c.kill()));
    }
    // The grant is dead. What the store says about it depends on how the two unlocked processes' writes
    // interleaved (one may erase the other's record of the failure): that is the point of the lock.
    await assert.rejects(h.rt.auth.getAccessToken({ forceRefresh: true }), (error: Error & { code?: string }) => ['NEEDS_SIGNIN', 'SIGNED_OUT'].includes(error.code ?? ''));
    assert.notEqual((await h.rt.auth.status()).state, 'ready');
  });
});
