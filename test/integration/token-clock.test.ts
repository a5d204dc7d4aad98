import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

/**
 * A machine whose clock is wrong by more than openid-client's 30 s tolerance: every id_token of a refresh
 * fails its iat/nbf/exp checks after the token endpoint has already rotated the refresh token.
 */
describe('a refresh on a machine whose clock is off', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    await signIn(h);
  });
  after(async () => {
    h.sandbox.admin.setClockOffset(0);
    await h.close();
  });

  test('keeps the rotated refresh token, measures the distance, allows for it afterwards, and says to fix the clock', async () => {
    h.sandbox.admin.setRevokeOnReuse(true); // a provider that punishes a token spent twice
    const before = await h.rt.store.getSecret<{ refreshToken: string }>('auth:tokens');
    // The identity provider's clock runs 10 minutes ahead of this machine's.
    h.sandbox.admin.setClockOffset(10 * 60_000);
    await h.rt.auth.getAccessToken({ forceRefresh: true });
    const after = await h.rt.store.getSecret<{ refreshToken: string }>('auth:tokens');
    assert.notEqual(after!.refreshToken, before!.refreshToken, 'the rotated refresh token was kept');
    const clock = await h.rt.store.get<{ skewSec: number }>('auth:clock');
    assert.ok(clock && Math.abs(clock.skewSec - 600) <= 5, `measured ${clock?.skewSec} s`);
    assert.ok(h.logs.some((l) => /clock is \d+ s behind the identity provider's.*fix the clock/.test(l)), 'a warning says what to do');
    // The next refreshes pass the checks with the measured distance: no recovery needed, grant alive.
    const warnings = h.logs.filter((l) => /fix the clock/.test(l)).length;
    for (let i = 0; i < 3; i++) await h.rt.auth.getAccessToken({ forceRefresh: true });
    assert.equal(h.logs.filter((l) => /fix the clock/.test(l)).length, warnings);
    assert.equal((await h.rt.auth.status()).state, 'ready');
    const run = await h.rt.runner.run('triage', { dryRun: true });
    assert.equal(run.ok, true, run.error);
    const refused = h.sandbox.admin.tokenRequests().filter((r) => r.grantType === 'refresh_token' && r.status !== 200);
    assert.deepEqual(refused, [], 'no refresh token was ever presented twice');
  });

  test('once the clocks agree again, the next refresh notices and forgets the distance', async () => {
    h.sandbox.admin.setClockOffset(0);
    await h.rt.auth.getAccessToken({ forceRefresh: true });
    assert.ok(h.logs.some((l) => /clock agrees with the identity provider's again/.test(l)));
    const clock = await h.rt.store.get<{ skewSec: number }>('auth:clock');
    assert.ok(clock && Math.abs(clock.skewSec) <= 5, `re-measured ${clock?.skewSec} s`);
    assert.equal((await h.rt.auth.status()).state, 'ready');
  });
});
