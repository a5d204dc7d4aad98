import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { authorizeAt, hostOf, signIn, startHarness, type Harness } from '../helpers/harness.ts';

describe('the sign-in callback refuses what it must, and stores nothing then', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  const assertNothingStored = async () => {
    assert.equal(await h.rt.store.get('auth:tokens'), undefined);
    assert.equal(await h.rt.store.get('auth:account'), undefined);
  };

  test('sign-in sends PKCE S256, state, nonce and offline_access, and binds the flow to an HttpOnly cookie', async () => {
    const res = await h.http.get('/auth/signin').set('Host', hostOf(h)).expect(302);
    const url = new URL(res.headers.location!);
    assert.equal(url.origin, h.sandbox.signInUrl);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.ok((url.searchParams.get('code_challenge') ?? '').length >= 43);
    assert.ok(url.searchParams.get('state'));
    assert.ok(url.searchParams.get('nonce'));
    assert.match(url.searchParams.get('scope') ?? '', /offline_access/);
    assert.match(String(res.headers['set-cookie']), /ma_signin=[^;]+; Max-Age=600; Path=\/auth; .*HttpOnly; SameSite=Lax/);
  });

  test('a request on another loopback origin first hops to the redirect URI origin, so the cookie lands where the callback arrives', async () => {
    const res = await h.http.get('/auth/signin').set('Host', '127.0.0.1:3000').expect(302);
    assert.equal(res.headers.location, 'http://localhost:3000/auth/signin');
  });

  test('a callback without a sign-in started in this browser is refused', async () => {
    const fresh = (await import('supertest')).default.agent(h.app);
    const res = await fresh.get('/auth/callback?code=abc&state=xyz').set('Host', hostOf(h)).set('Accept', 'text/html').expect(400);
    assert.match(res.text, /does not belong to a sign-in started in this browser/);
    await assertNothingStored();
  });

  test('a forged state is refused', async () => {
    const { callback } = await authorizeAt(h, { username: 'alice@contoso.test', password: 'sandbox', action: 'signin' });
    callback.searchParams.set('state', 'forged-state');
    const res = await h.http.get(callback.pathname + callback.search).set('Host', hostOf(h)).set('Accept', 'text/html').expect(400);
    assert.match(res.text, /security check/);
    assert.doesNotMatch(res.text, /code=/);
    await assertNothingStored();
  });

  test('an error response shows the AADSTS text and what to do', async () => {
    const { callback } = await authorizeAt(h, { action: 'cancel' });
    assert.equal(callback.searchParams.get('error'), 'access_denied');
    const res = await h.http.get(callback.pathname + callback.search).set('Host', hostOf(h)).set('Accept', 'text/html').expect(400);
    assert.match(res.text, /Sign-in failed: AADSTS\d+/);
    assert.match(res.text, /Try again: http:\/\/127\.0\.0\.1:3000\/auth\/signin/);
    await assertNothingStored();
  });

  test('a replayed callback (same code, same cookie) is refused; the first one worked', async () => {
    const { response, callback } = await signIn(h);
    assert.equal(response.status, 303);
    const replay = await h.http.get(callback.pathname + callback.search).set('Host', hostOf(h)).set('Accept', 'application/json').expect(400);
    assert.equal(replay.body.error.code, 'SIGNIN_STATE_INVALID');
    assert.equal((await h.http.get('/api/status')).body.account.upn, 'alice@contoso.test');
  });

  test('a different person signing in is refused until sign-out', async () => {
    const { response } = await signIn(h, 'bob@contoso.test');
    assert.equal(response.status, 409);
    assert.equal((await h.http.get('/api/status')).body.account.upn, 'alice@contoso.test');
    await h.http.post('/auth/signout').set('Host', hostOf(h)).set('Accept', 'application/json').expect(200);
    const status = (await h.http.get('/api/status')).body;
    assert.equal(status.state, 'signed-out');
    await assertNothingStored();
    const again = await signIn(h, 'bob@contoso.test');
    assert.equal(again.response.status, 303);
    assert.equal((await h.http.get('/api/status')).body.account.upn, 'bob@contoso.test');
  });

  test('a cross-site POST is refused', async () => {
    await h.http.post('/auth/signout').set('Host', hostOf(h)).set('Origin', 'https://evil.example').expect(403);
    await h.http.post('/api/jobs/triage/run').set('Host', hostOf(h)).set('Sec-Fetch-Site', 'cross-site').expect(403);
    assert.equal((await h.http.get('/api/status')).body.state, 'ready');
  });
});

describe('MAILBOX restricts who may sign in', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { MAILBOX: 'alice@contoso.test' } });
  });
  after(() => h.close());

  test('bob is refused and nothing is stored; alice gets in', async () => {
    const bob = await signIn(h, 'bob@contoso.test');
    assert.equal(bob.response.status, 403);
    assert.match(bob.response.text, /set up for alice@contoso\.test only/);
    assert.equal(await h.rt.store.get('auth:tokens'), undefined);
    const alice = await signIn(h, 'alice@contoso.test');
    assert.equal(alice.response.status, 303);
  });
});
