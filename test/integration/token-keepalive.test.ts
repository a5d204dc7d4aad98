import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KeepAlive } from '../../src/auth/keep-alive.ts';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

const DAY = 86_400_000;

/**
 * Months without a single job: the agent's clock and the sandbox's move together, one day per check.
 * The sandbox enforces Entra's fixed 90-day inactivity limit on refresh tokens (AADSTS700082).
 */
describe('keep-alive: the token survives months with no job', () => {
  let h: Harness;
  let days = 0;
  const passDays = (n: number) => {
    days += n;
    h.advance(n * DAY);
    h.sandbox.admin.setClockOffset(days * DAY);
  };
  before(async () => {
    h = await startHarness({ env: { KEEPALIVE_DAYS: '7' } });
    await signIn(h);
  });
  after(() => h.close());
  const refreshes = () => h.sandbox.admin.tokenRequests().filter((r) => r.grantType === 'refresh_token' && r.status === 200).length;

  test('status shows the refresh token age, the last refresh and the next keep-alive', async () => {
    const status = (await h.http.get('/api/status')).body;
    assert.equal(status.state, 'ready');
    assert.equal(status.refreshTokenAgeDays, 0);
    assert.ok(status.lastRefreshAt);
    assert.equal(Date.parse(status.nextKeepAliveAt) - Date.parse(status.lastRefreshAt), 7 * DAY);
    passDays(3);
    const later = (await h.http.get('/api/status')).body;
    assert.equal(later.refreshTokenAgeDays, 3);
    assert.equal(later.nextKeepAliveAt, status.nextKeepAliveAt);
  });

  test('checked daily for 120 days, it refreshes every 7 days and nothing else; the grant is alive', async () => {
    const upkeep = new KeepAlive({ auth: h.rt.auth, notifier: h.rt.notifier, log: h.rt.log });
    const before = refreshes();
    const start = days;
    while (days - start < 120) {
      passDays(1);
      await upkeep.tick();
    }
    const made = refreshes() - before;
    assert.ok(made >= 17 && made <= 18, `refreshed ${made} times in 120 days`);
    const status = (await h.http.get('/api/status')).body;
    assert.equal(status.state, 'ready');
    assert.ok(status.refreshTokenAgeDays < 7, `age ${status.refreshTokenAgeDays}`);
    const result = (await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', 'localhost:3000')).body;
    assert.equal(result.ok, true, result.error);
  });

  test('without keep-alive, 91 idle days kill the refresh token (the limit the keep-alive avoids)', async () => {
    passDays(91);
    await assert.rejects(h.rt.auth.getAccessToken(), /90 days|AADSTS700082/);
    const status = (await h.http.get('/api/status')).body;
    assert.equal(status.state, 'needs-signin');
    assert.match(status.remedy, /Sign in again/);
    // The keep-alive has nothing to refresh now, and says so without throwing.
    await new KeepAlive({ auth: h.rt.auth, notifier: h.rt.notifier, log: h.rt.log }).tick();
  });
});
