import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hostOf, signIn, startHarness, type Harness } from '../helpers/harness.ts';

interface Tokens {
  refreshToken: string;
  accessToken?: string;
  accessTokenExpiresAt?: number;
}

describe('the job gets its access token by the refresh grant and keeps the rotated refresh token', () => {
  let h: Harness;
  before(async () => {
    // Access tokens shorter than the agent's 5-minute margin: reused for half their life, then refreshed.
    h = await startHarness({ sandboxOptions: { accessTokenLifetimeSec: 120 } });
    await signIn(h);
  });
  after(() => h.close());

  const refreshes = () => h.sandbox.admin.tokenRequests().filter((r) => r.grantType === 'refresh_token');

  test('a run with a fresh token makes no token request', async () => {
    const count = h.sandbox.admin.tokenRequests().length;
    const result = (await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', hostOf(h)).expect(200)).body;
    assert.equal(result.ok, true, result.error);
    assert.equal(h.sandbox.admin.tokenRequests().length, count);
  });

  test('a run near expiry refreshes once, and the new refresh token is persisted', async () => {
    const before = (await h.rt.store.getSecret<Tokens>('auth:tokens'))!;
    const count = refreshes().length;
    h.advance(61_000);
    const result = (await h.http.post('/api/jobs/triage/run').set('Host', hostOf(h)).expect(200)).body;
    assert.equal(result.ok, true, result.error);
    assert.equal(refreshes().length, count + 1, 'one refresh, shared by every request of the run');
    const after = (await h.rt.store.getSecret<Tokens>('auth:tokens'))!;
    assert.notEqual(after.refreshToken, before.refreshToken, 'rotated');
    assert.notEqual(after.accessToken, before.accessToken);
  });

  test('concurrent callers share one refresh', async () => {
    const count = refreshes().length;
    const tokens = await Promise.all([1, 2, 3, 4, 5].map(() => h.rt.auth.getAccessToken({ forceRefresh: true })));
    assert.equal(new Set(tokens).size, 1);
    assert.equal(refreshes().length, count + 1);
  });

  test('a transient failure (503) that outlasts the retries keeps the token and the state ready', async () => {
    h.advance(61_000);
    // Three attempts, Retry-After 0: each one refused, so the run fails for now.
    h.sandbox.admin.injectTokenError('alice@contoso.test', { status: 503, error: 'temporarily_unavailable', aadsts: 90033, description: 'A transient error has occurred. Please try again.', retryAfter: '0' }, 3);
    const result = (await h.http.post('/api/jobs/triage/run').set('Host', hostOf(h)).expect(200)).body;
    assert.equal(result.ok, false);
    assert.match(result.error, /for now/);
    const status = (await h.http.get('/api/status')).body;
    assert.equal(status.state, 'ready');
    assert.ok(await h.rt.store.getSecret('auth:tokens'));
    const next = (await h.http.post('/api/jobs/triage/run').set('Host', hostOf(h)).expect(200)).body;
    assert.equal(next.ok, true, next.error);
  });

  test('a revoked grant (password changed) means needs-signin with the reason; the token goes, the delta link stays', async () => {
    const deltaKeysBefore = await deltaState(h);
    assert.ok(deltaKeysBefore, 'the job has a delta link');
    h.sandbox.admin.revokeGrants('alice@contoso.test');
    h.advance(61_000);
    const result = (await h.http.post('/api/jobs/triage/run').set('Host', hostOf(h)).expect(200)).body;
    assert.equal(result.ok, false);
    assert.match(result.error, /AADSTS50173/);
    assert.match(result.error, /Sign in again: http:\/\/127\.0\.0\.1:3000\/auth\/signin/);
    const status = (await h.http.get('/api/status')).body;
    assert.equal(status.state, 'needs-signin');
    assert.match(status.reason, /password was changed/);
    assert.equal(status.account.upn, 'alice@contoso.test');
    assert.equal(await h.rt.store.get('auth:tokens'), undefined);
    assert.deepEqual(await deltaState(h), deltaKeysBefore);
    const page = await h.http.get('/').expect(200);
    assert.match(page.text, /A new sign-in is needed/);

    const again = await signIn(h);
    assert.equal(again.response.status, 303);
    assert.equal((await h.http.get('/api/status')).body.state, 'ready');
    h.sandbox.admin.deliver('alice@contoso.test', { subject: 'Your invoice', from: 'billing@vendor.example' });
    const resumed = (await h.http.post('/api/jobs/triage/run').set('Host', hostOf(h)).expect(200)).body;
    assert.equal(resumed.ok, true, resumed.error);
    assert.deepEqual(resumed.actions.map((a: { action: string }) => a.action), ['flag'], 'resumed from the stored delta link');
  });
});

async function deltaState(h: Harness): Promise<unknown> {
  const inbox = h.sandbox.admin.folders('alice@contoso.test').find((f) => f.wellKnownName === 'inbox')!;
  const byId = await h.rt.store.get(`job:triage:delta:${inbox.id}`);
  if (byId) return byId;
  // The agent keys by the id Graph returned for the folder; look it up the same way.
  const folder = (await h.rt.graph.get<{ id: string }>('/me/mailFolders/inbox').catch(() => undefined))?.body;
  return folder ? h.rt.store.get(`job:triage:delta:${folder.id}`) : undefined;
}
