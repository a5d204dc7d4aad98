import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KeepAlive } from '../../src/auth/keep-alive.ts';
import { Scheduler } from '../../src/jobs/index.ts';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';
import { startWebhook } from '../notify/webhook.ts';

type Row = { status: number; error: string; aadsts?: number; expect: RegExp };

/** Every row of docs/microsoft-notes.md's table, and the standard errors, injected on the next refresh. */
/** The grant is dead: the refresh token goes, a new sign-in is the fix. */
const NEEDS_SIGNIN: Row[] = [
  { status: 400, error: 'invalid_grant', aadsts: 70008, expect: /expired or was revoked \(AADSTS70008\)/ },
  { status: 400, error: 'invalid_grant', aadsts: 700082, expect: /90 days without use \(AADSTS700082\)/ },
  { status: 400, error: 'invalid_grant', aadsts: 700081, expect: /maximum lifetime \(AADSTS700081\)/ },
  { status: 400, error: 'invalid_grant', aadsts: 700084, expect: /single-page-app.*\(AADSTS700084\)/ },
  { status: 400, error: 'invalid_grant', aadsts: 50173, expect: /password was changed \(AADSTS50173\)/ },
  { status: 400, error: 'invalid_grant', expect: /no longer accepts the stored sign-in \(invalid_grant\)/ },
  { status: 400, error: 'login_required', expect: /\(login_required\)/ },
];
/** The grant is alive and the condition may clear by itself: the refresh token is kept and tried again hourly. */
const MAY_CLEAR: Row[] = [
  { status: 400, error: 'invalid_grant', aadsts: 65001, expect: /Consent .* withdrawn \(AADSTS65001\)/ },
  { status: 400, error: 'interaction_required', aadsts: 50076, expect: /Multi-factor authentication is required \(AADSTS50076\)/ },
  { status: 400, error: 'interaction_required', aadsts: 50079, expect: /enrol in multi-factor.*\(AADSTS50079\)/ },
  { status: 400, error: 'interaction_required', aadsts: 50078, expect: /multi-factor authentication has expired \(AADSTS50078\)/ },
  { status: 400, error: 'invalid_grant', aadsts: 70043, expect: /sign-in frequency.*\(AADSTS70043\)/ },
  { status: 400, error: 'invalid_grant', aadsts: 53003, expect: /Conditional Access blocked.*\(AADSTS53003\)/ },
  { status: 400, error: 'interaction_required', expect: /\(interaction_required\)/ },
  { status: 400, error: 'consent_required', expect: /\(consent_required\)/ },
];
const CONFIG: Row[] = [
  { status: 400, error: 'invalid_grant', aadsts: 90094, expect: /administrator must consent.*adminconsent/ },
  { status: 400, error: 'unauthorized_client', aadsts: 700016, expect: /MS_CLIENT_ID\) was not found.*Check MS_CLIENT_ID and MS_TENANT/ },
  { status: 401, error: 'invalid_client', aadsts: 7000215, expect: /client secret is wrong.*MS_CLIENT_SECRET/ },
  { status: 401, error: 'invalid_client', aadsts: 7000222, expect: /client secret has expired.*Certificates & secrets/ },
  { status: 401, error: 'invalid_client', aadsts: 700027, expect: /certificate is not registered/ },
  { status: 400, error: 'unauthorized_client', aadsts: 7000112, expect: /application is disabled/ },
  { status: 401, error: 'invalid_client', aadsts: 7000218, expect: /public client flows.*"Allow public client flows" and set it to Yes/ },
  { status: 400, error: 'invalid_request', aadsts: 50194, expect: /single-tenant.*Set MS_TENANT in \.env to your Directory \(tenant\) ID/ },
  { status: 400, error: 'invalid_request', aadsts: 9002327, expect: /Single-page application.*"Mobile and desktop applications"/ },
];
const TRANSIENT: Row[] = [
  { status: 503, error: 'temporarily_unavailable', aadsts: 90033, expect: /for now: The identity provider answered HTTP 503/ },
  { status: 500, error: 'server_error', expect: /for now: The identity provider answered HTTP 500/ },
  { status: 429, error: 'temporarily_unavailable', expect: /for now: The identity provider answered HTTP 429/ },
];

describe('every failure class of a refresh, end to end through the sandbox', () => {
  let h: Harness;
  let hook: Awaited<ReturnType<typeof startWebhook>>;
  const seen: string[] = [];
  before(async () => {
    hook = await startWebhook();
    // Access tokens of 2 minutes: a 61-second step of the agent's clock makes the next run refresh.
    h = await startHarness({ env: { NOTIFY_URL: hook.url }, sandboxOptions: { accessTokenLifetimeSec: 120 } });
    await signIn(h);
  });
  after(async () => {
    await h.close();
    await hook.close();
    if (process.env.TOKEN_FAILURES_PRINT) console.log(seen.join('\n'));
  });

  /** Injects the error, forces the next run to refresh, returns the run's one-line error. */
  async function failOnce(row: Row, times = 1): Promise<string> {
    // Retry-After 0: a transient row is retried within the refresh at once, so it fails only if every attempt does.
    h.sandbox.admin.injectTokenError('alice@contoso.test', { status: row.status, error: row.error, aadsts: row.aadsts, retryAfter: '0' }, times);
    h.advance(61_000);
    const result = (await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', 'localhost:3000')).body;
    assert.equal(result.ok, false);
    seen.push(`${row.error}${row.aadsts ? ` AADSTS${row.aadsts}` : ''} → ${result.error}`);
    return result.error as string;
  }

  test('needs-signin rows: state needs-signin with reason and remedy, the token goes, one notification, recovered after sign-in', async () => {
    let first = true;
    for (const row of NEEDS_SIGNIN) {
      hook.received.length = 0;
      // The injected error is one-shot and the grant itself stays valid, so after the first row the test puts
      // the unspent token back instead of signing in again through the (rate-limited) web UI.
      const unspent = await h.rt.store.getSecret<Record<string, unknown>>('auth:tokens');
      const error = await failOnce(row);
      assert.match(error, row.expect);
      assert.match(error, /Sign in again.*http:\/\/127\.0\.0\.1:3000\/auth\/signin/);
      const status = (await h.http.get('/api/status')).body;
      assert.equal(status.state, 'needs-signin', `${row.aadsts ?? row.error}`);
      assert.match(status.reason, row.expect);
      assert.equal(await h.rt.store.get('auth:tokens'), undefined, 'the dead token is not kept');
      // A second run while still signed out: no new notification.
      await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', 'localhost:3000');
      assert.deepEqual(hook.received.map((m) => m.event), ['needs-signin']);
      assert.match(String(hook.received[0]!.reason), row.expect);
      assert.equal(hook.received[0]!.signinUrl, 'http://127.0.0.1:3000/auth/signin');
      assert.ok(!JSON.stringify(hook.received).match(/eyJ|refresh_token|access_token/), 'no token in a notification');
      if (first) {
        await signIn(h);
        first = false;
      } else {
        await h.rt.store.setSecret('auth:tokens', unspent);
        await h.rt.auth.getAccessToken({ forceRefresh: true });
      }
      assert.deepEqual(hook.received.map((m) => m.event), ['needs-signin', 'recovered'], `${row.aadsts ?? row.error}`);
    }
  });

  test('may-clear rows (Conditional Access, MFA, consent): needs-signin, the token is KEPT, one notification, retried hourly, recovers alone', async () => {
    for (const row of MAY_CLEAR) {
      hook.received.length = 0;
      const error = await failOnce(row);
      assert.match(error, row.expect);
      const status = (await h.http.get('/api/status')).body;
      assert.equal(status.state, 'needs-signin', `${row.aadsts ?? row.error}`);
      assert.match(status.reason, row.expect);
      assert.match(status.remedy, /the agent tries again by itself/);
      assert.ok(status.nextAttemptAt, 'says when it tries again');
      assert.ok(await h.rt.store.get('auth:tokens'), 'the refresh token is kept');
      // Within the hour: no token request, no second notification.
      const before = h.sandbox.admin.tokenRequests().length;
      h.advance(61_000);
      const again = (await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', 'localhost:3000')).body;
      assert.equal(again.ok, false);
      assert.equal(h.sandbox.admin.tokenRequests().length, before, 'the blocked token is not retried before the hour');
      assert.deepEqual(hook.received.map((m) => m.event), ['needs-signin']);
      // An hour later the condition has cleared (the injection was one-shot): the server's upkeep recovers alone.
      h.advance(60 * 60_000);
      await new KeepAlive({ auth: h.rt.auth, notifier: h.rt.notifier, log: h.rt.log }).tick();
      assert.equal((await h.rt.auth.status()).state, 'ready', `${row.aadsts ?? row.error}`);
      assert.deepEqual(hook.received.map((m) => m.event), ['needs-signin', 'recovered']);
    }
  });

  test('a Conditional Access block that stays, then lifts: the agent retries hourly and resumes without a sign-in', async () => {
    hook.received.length = 0;
    h.sandbox.admin.setConditionalAccessBlock('alice@contoso.test', true);
    h.advance(61 * 60_000);
    const first = (await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', 'localhost:3000')).body;
    assert.match(first.error, /Conditional Access blocked the token \(AADSTS53003\)/);
    const upkeep = new KeepAlive({ auth: h.rt.auth, notifier: h.rt.notifier, log: h.rt.log });
    const refreshes = () => h.sandbox.admin.tokenRequests().filter((t) => t.grantType === 'refresh_token').length;
    const afterFirst = refreshes();
    for (let hour = 1; hour <= 3; hour++) {
      h.advance(20 * 60_000);
      await upkeep.tick();
      h.advance(20 * 60_000);
      await upkeep.tick();
      h.advance(21 * 60_000);
      await upkeep.tick();
      assert.equal(refreshes(), afterFirst + hour, `one refresh attempt per hour (hour ${hour})`);
      assert.equal((await h.rt.auth.status()).state, 'needs-signin');
    }
    assert.ok(await h.rt.store.get('auth:tokens'), 'the token survived three hours of blocks');
    assert.deepEqual(hook.received.map((m) => m.event), ['needs-signin']);
    h.sandbox.admin.setConditionalAccessBlock('alice@contoso.test', false);
    h.advance(61 * 60_000);
    await upkeep.tick();
    assert.equal((await h.rt.auth.status()).state, 'ready');
    assert.deepEqual(hook.received.map((m) => m.event), ['needs-signin', 'recovered']);
    const run = (await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', 'localhost:3000')).body;
    assert.equal(run.ok, true, run.error);
  });

  test('configuration rows: needs-config, say what to change (never a sign-in), keep the token, notify once; a later good refresh recovers', async () => {
    for (const row of CONFIG) {
      hook.received.length = 0;
      const error = await failOnce(row);
      assert.match(error, row.expect);
      assert.doesNotMatch(error, /Sign in again/);
      const status = (await h.http.get('/api/status')).body;
      assert.equal(status.state, 'needs-config', 'a person must change the configuration');
      assert.doesNotMatch(`${status.reason} ${status.remedy}`, /sign in again|auth\/signin/i, 'a sign-in is never offered as the fix');
      assert.match(`${status.reason} ${status.remedy}`, row.expect);
      assert.doesNotMatch(status.remedy, /\{(tenant|clientId)\}/, 'placeholders are filled in');
      assert.ok(await h.rt.store.get('auth:tokens'), 'a configuration error does not throw the token away');
      assert.deepEqual(hook.received.map((m) => m.event), ['auth-config']);
      // Fixed (the injection was one-shot): the next refresh works with the kept token.
      await h.rt.auth.getAccessToken({ forceRefresh: true });
      assert.equal((await h.rt.auth.status()).state, 'ready');
      assert.deepEqual(hook.received.map((m) => m.event), ['auth-config', 'recovered']);
    }
  });

  test('transient rows (5xx, temporarily_unavailable, 429): fail for now, token kept, state ready, no notification', async () => {
    hook.received.length = 0;
    for (const row of TRANSIENT) {
      const error = await failOnce(row, 3);
      assert.match(error, row.expect);
      assert.equal((await h.http.get('/api/status')).body.state, 'ready');
      assert.ok(await h.rt.store.get('auth:tokens'));
      const next = (await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', 'localhost:3000')).body;
      assert.equal(next.ok, true, next.error);
    }
    assert.deepEqual(hook.received, []);
  });

  test('a 429 or 503 from the token endpoint is waited out within the run: Retry-After honoured, the run succeeds', async () => {
    hook.received.length = 0;
    h.sandbox.admin.clearLogs();
    h.sandbox.admin.injectTokenError('alice@contoso.test', { status: 429, error: 'temporarily_unavailable', retryAfter: '0.3' });
    h.sandbox.admin.injectTokenError('alice@contoso.test', { status: 503, error: 'temporarily_unavailable', aadsts: 90033 });
    h.advance(61_000);
    const result = (await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', 'localhost:3000')).body;
    assert.equal(result.ok, true, result.error);
    const refreshes = h.sandbox.admin.tokenRequests().filter((r) => r.grantType === 'refresh_token').map((r) => r.status);
    assert.deepEqual(refreshes, [429, 503, 200], 'two refusals, then the same refresh token redeemed once');
    assert.equal((await h.rt.auth.status()).state, 'ready');
    assert.deepEqual(hook.received, []);
  });

  test('a Retry-After longer than the run may wait is remembered: no process asks the token endpoint again before it passes', async () => {
    h.sandbox.admin.clearLogs();
    h.sandbox.admin.injectTokenError('alice@contoso.test', { status: 429, error: 'temporarily_unavailable', retryAfter: '40' });
    h.advance(61_000);
    const first = (await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', 'localhost:3000')).body;
    assert.equal(first.ok, false);
    assert.match(first.error, /for now: The identity provider answered HTTP 429/);
    const second = (await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', 'localhost:3000')).body;
    assert.equal(second.ok, false);
    assert.match(second.error, /asked the agent to wait until/);
    assert.equal(h.sandbox.admin.tokenRequests().filter((r) => r.grantType === 'refresh_token').length, 1, 'the second run did not call the token endpoint');
    assert.equal((await h.rt.auth.status()).state, 'ready', 'throttling never marks the token dead');
    h.advance(41_000);
    const after = (await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', 'localhost:3000')).body;
    assert.equal(after.ok, true, after.error);
    assert.equal(await h.rt.store.get('auth:throttle'), undefined, 'forgotten after a successful refresh');
  });

  test('the scheduler pauses quietly while a sign-in is needed (one log line) and resumes from the delta links after it', async () => {
    await h.http.post('/api/jobs/triage/run').set('Host', 'localhost:3000').expect(200);
    const deltaKeys = await h.rt.store.get('job:triage:delta:inbox');
    hook.received.length = 0;
    h.sandbox.admin.revokeGrants('alice@contoso.test');
    h.advance(61_000);
    const authGate = async () => {
      const s = await h.rt.auth.status();
      return s.state === 'ready' ? undefined : `${s.state}: ${s.reason ?? ''}`;
    };
    const scheduler = new Scheduler(h.rt.runner, h.rt.log, undefined, authGate);
    scheduler.start();
    const tick = () => (scheduler as unknown as { tasks: Map<string, { execute(): Promise<unknown> }> }).tasks.get('triage')!.execute();
    try {
      await tick(); // this run meets the revoked grant
      const logsBefore = h.logs.length;
      for (let i = 0; i < 5; i++) await tick();
      const newLines = h.logs.slice(logsBefore);
      assert.equal(newLines.filter((l) => /scheduled runs paused/.test(l)).length, 1, newLines.join('\n'));
      assert.equal(newLines.filter((l) => /run (started|failed)/.test(l)).length, 0, 'no run while paused');
      assert.deepEqual(hook.received.map((m) => m.event), ['needs-signin']);
      await signIn(h);
      await tick();
      assert.ok(h.logs.slice(logsBefore).some((l) => /scheduled runs resumed/.test(l)));
      const last = await h.rt.runner.lastRun('triage');
      assert.equal(last?.ok, true, last?.error);
      if (deltaKeys !== undefined) assert.ok(await h.rt.store.get('job:triage:delta:inbox'), 'the delta link was kept');
    } finally {
      await scheduler.stop();
    }
  });
});
