import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Agent, fetch } from 'undici';
import { startSandbox, SANDBOX_CLIENT_ID, type Sandbox } from '../../src/sandbox/index.ts';
import { decodeJwt } from '../../src/sandbox/jwt.ts';

const REDIRECT = 'http://localhost:3000/auth/callback';
const SCOPE = 'openid profile offline_access https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/Mail.Send https://graph.microsoft.com/MailboxSettings.Read https://graph.microsoft.com/User.Read';

type Json = Record<string, any>;

let dir: string;
let sb: Sandbox;
const agents = new Map<string, Agent>();
/** One undici Agent per sandbox, trusting only that sandbox's CA. */
function agentFor(s: Sandbox): Agent {
  let a = agents.get(s.url);
  if (!a) agents.set(s.url, (a = new Agent({ connect: { ca: s.caPem } })));
  return a;
}

async function call(path: string, init: { method?: string; headers?: Record<string, string>; body?: string | URLSearchParams } = {}) {
  const res = await fetch(path.startsWith('http') ? path : sb.url + path, { redirect: 'manual', dispatcher: agentFor(sb), ...init });
  const text = await res.text();
  let json: Json | undefined;
  try {
    json = JSON.parse(text) as Json;
  } catch { /* html or empty */ }
  return { status: res.status, headers: res.headers, text, json: json as Json };
}

/** A free port whose neighbour (port + 1) is free too. */
async function freePortPair(): Promise<number> {
  for (;;) {
    const a = createServer().listen(0, '127.0.0.1');
    await once(a, 'listening');
    const port = (a.address() as { port: number }).port;
    const b = createServer().listen(port + 1, '127.0.0.1');
    const ok = await Promise.race([once(b, 'listening').then(() => true), once(b, 'error').then(() => false)]);
    await Promise.all([new Promise((r) => a.close(r)), ok ? new Promise((r) => b.close(r)) : undefined]);
    if (ok && port + 1 <= 65535) return port;
  }
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** Drives authorize + sign-in form; returns the redirect's query. */
async function signIn(opts: { tenant?: string; user?: string; password?: string; challenge?: string; state?: string; nonce?: string } = {}) {
  const tenant = opts.tenant ?? sb.tenantId;
  const form = new URLSearchParams({
    client_id: SANDBOX_CLIENT_ID, redirect_uri: REDIRECT, response_type: 'code', scope: SCOPE,
    state: opts.state ?? 'st-1', nonce: opts.nonce ?? 'n-1', username: opts.user ?? 'alice@contoso.test', password: opts.password ?? 'sandbox',
    action: 'signin',
  });
  if (opts.challenge) {
    form.set('code_challenge', opts.challenge);
    form.set('code_challenge_method', 'S256');
  }
  const r = await call(`/${tenant}/login`, { method: 'POST', body: form });
  return r;
}

async function codeFlow(user = 'alice@contoso.test') {
  const { verifier, challenge } = pkce();
  const r = await signIn({ challenge, user });
  assert.equal(r.status, 302, r.text);
  const loc = new URL(r.headers.get('location')!);
  const code = loc.searchParams.get('code')!;
  const tok = await call(`/${sb.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    body: new URLSearchParams({ client_id: SANDBOX_CLIENT_ID, grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }),
  });
  assert.equal(tok.status, 200, tok.text);
  return tok.json;
}

async function refresh(rt: string) {
  return call(`/${sb.tenantId}/oauth2/v2.0/token`, {
    method: 'POST', body: new URLSearchParams({ client_id: SANDBOX_CLIENT_ID, grant_type: 'refresh_token', refresh_token: rt }),
  });
}

function assertEntraError(body: Json, error: string, code: number) {
  assert.equal(body.error, error);
  assert.deepEqual(body.error_codes, [code]);
  assert.match(body.error_description, new RegExp(`^AADSTS${code}: .+\\r\\nTrace ID: [0-9a-f-]{36}\\r\\nCorrelation ID: [0-9a-f-]{36}\\r\\nTimestamp: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ$`));
  assert.match(body.timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
  assert.ok(body.trace_id && body.correlation_id && body.error_uri);
}

let token: Json;
const graph = (path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) =>
  call(`/v1.0${path}`, { ...init, headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json', ...init.headers } });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sandbox-test-'));
  sb = await startSandbox({ dataDir: dir, port: 0 });
  token = await codeFlow();
});

after(async () => {
  await sb.close();
  await Promise.all([...agents.values()].map((a) => a.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('transport', () => {
  it('serves HTTPS with a CA in dataDir and 0600 keys', () => {
    assert.match(sb.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(sb.caPath, join(dir, 'ca.pem'));
    assert.equal(statSync(join(dir, 'server-key.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'ca-key.pem')).mode & 0o777, 0o600);
  });
});

describe('the sign-in origin (plain HTTP on loopback, for the pages a browser opens)', () => {
  // The last tests start sandboxes in this process, whose seeding blocks the event loop for a while: a kept-alive
  // connection to `sb` may then be closed by the server just as the next request takes it (ECONNRESET).
  after(async () => {
    await agents.get(sb.url)?.close();
    agents.delete(sb.url);
  });
  it('is where discovery sends the browser (authorize, logout), while discovery, JWKS and token stay HTTPS', async () => {
    assert.match(sb.signInUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(new URL(sb.signInUrl).port, new URL(sb.url).port);
    const r = await call(`/${sb.tenantId}/v2.0/.well-known/openid-configuration`);
    assert.equal(r.json.authorization_endpoint, `${sb.signInUrl}/${sb.tenantId}/oauth2/v2.0/authorize`);
    assert.equal(r.json.end_session_endpoint, `${sb.signInUrl}/${sb.tenantId}/oauth2/v2.0/logout`);
    assert.equal(r.json.token_endpoint, `${sb.url}/${sb.tenantId}/oauth2/v2.0/token`);
    assert.equal(r.json.jwks_uri, `${sb.url}/${sb.tenantId}/discovery/v2.0/keys`);
    assert.equal(r.json.device_authorization_endpoint, `${sb.url}/${sb.tenantId}/oauth2/v2.0/devicecode`);
  });
  it('serves the sign-in page and completes a sign-in whose code the HTTPS token endpoint redeems', async () => {
    const { verifier, challenge } = pkce();
    const params = { client_id: SANDBOX_CLIENT_ID, redirect_uri: REDIRECT, response_type: 'code', scope: SCOPE, state: 's-http', code_challenge: challenge, code_challenge_method: 'S256' };
    const page = await fetch(`${sb.signInUrl}/common/oauth2/v2.0/authorize?${new URLSearchParams(params)}`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<form method="post" action="\/common\/login">/);
    const login = await fetch(`${sb.signInUrl}/common/login`, {
      method: 'POST', redirect: 'manual', body: new URLSearchParams({ ...params, username: 'alice@contoso.test', password: 'sandbox', action: 'signin' }),
    });
    assert.equal(login.status, 302);
    // The session cookie: a browser keeps it on plain HTTP (no Secure), and it comes along on top-level navigations.
    assert.match(login.headers.get('set-cookie')!, /^ESTSAUTH=[0-9a-f-]{36}; Path=\/; HttpOnly; SameSite=Lax$/);
    const loc = new URL(login.headers.get('location')!);
    assert.equal(loc.searchParams.get('state'), 's-http');
    const tok = await call(`/${sb.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      body: new URLSearchParams({ client_id: SANDBOX_CLIENT_ID, grant_type: 'authorization_code', code: loc.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier }),
    });
    assert.equal(tok.status, 200, tok.text);
  });
  it('answers the authorize errors exactly as the HTTPS origin does', async () => {
    const bad = new URLSearchParams({ client_id: SANDBOX_CLIENT_ID, redirect_uri: 'http://evil.example/auth/callback', response_type: 'code', scope: SCOPE });
    const overHttp = await fetch(`${sb.signInUrl}/common/oauth2/v2.0/authorize?${bad}`, { redirect: 'manual' });
    assert.equal(overHttp.status, 400);
    assert.match(await overHttp.text(), /AADSTS50011/);
    const reportable = new URLSearchParams({ client_id: SANDBOX_CLIENT_ID, redirect_uri: REDIRECT, response_type: 'token', scope: SCOPE, state: 'e' });
    const redirected = await fetch(`${sb.signInUrl}/common/oauth2/v2.0/authorize?${reportable}`, { redirect: 'manual' });
    assert.equal(redirected.status, 302);
    assert.equal(new URL(redirected.headers.get('location')!).searchParams.get('error'), 'unsupported_response_type');
  });
  it('serves nothing but those pages: no token endpoint, no device code endpoint, no Graph, no control API over HTTP', async () => {
    for (const [method, path] of [
      ['POST', `/${sb.tenantId}/oauth2/v2.0/token`], ['POST', `/${sb.tenantId}/oauth2/v2.0/devicecode`],
      ['GET', `/${sb.tenantId}/v2.0/.well-known/openid-configuration`], ['GET', '/v1.0/me'], ['GET', '/_sandbox/info'],
    ] as const) {
      const r = await fetch(`${sb.signInUrl}${path}`, { method, ...(method === 'POST' ? { body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x', client_id: SANDBOX_CLIENT_ID }) } : {}) });
      assert.equal(r.status, 404, `${method} ${path}`);
      await r.body?.cancel();
    }
  });
  it('names the sign-in origin as the device code verification_uri', async () => {
    const dc = await call(`/${sb.tenantId}/oauth2/v2.0/devicecode`, { method: 'POST', body: new URLSearchParams({ client_id: SANDBOX_CLIENT_ID, scope: SCOPE }) });
    assert.equal(dc.json.verification_uri, `${sb.signInUrl}/devicelogin`);
    assert.match(dc.json.message, new RegExp(`open the page ${sb.signInUrl}/devicelogin `));
    const page = await fetch(dc.json.verification_uri);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<label for="otc">Code<\/label>/);
  });
  it('keeps the session cookie Secure and SameSite=None on the HTTPS origin', async () => {
    const r = await signIn({ state: 'cookie' });
    assert.match(r.headers.get('set-cookie')!, /; Path=\/; Secure; HttpOnly; SameSite=None$/);
  });
  it('listens next to a fixed HTTPS port by default, keeps its port across restarts, and takes another when that one is busy', async () => {
    const pdir = mkdtempSync(join(tmpdir(), 'sandbox-signin-port-'));
    const httpsPort = await freePortPair();
    let s = await startSandbox({ dataDir: pdir, port: httpsPort });
    try {
      assert.equal(s.signInUrl, `http://127.0.0.1:${httpsPort + 1}`);
      await s.close();
      // The port next to it is taken now: an ephemeral one is used and remembered.
      const blocker = createServer().listen(httpsPort + 1, '127.0.0.1');
      await once(blocker, 'listening');
      try {
        s = await startSandbox({ dataDir: pdir, port: httpsPort });
        const chosen = s.signInUrl;
        assert.notEqual(new URL(chosen).port, String(httpsPort + 1));
        await s.close();
        s = await startSandbox({ dataDir: pdir, port: httpsPort });
        assert.equal(s.signInUrl, chosen, 'the agent in another process keeps a working sign-in link');
      } finally {
        blocker.close();
      }
    } finally {
      await s.close();
      rmSync(pdir, { recursive: true, force: true });
    }
  });
  it('leaves the agent\'s own port free when it is the one next to the sandbox (PORT=3101, SANDBOX_PORT=3100)', async () => {
    const pdir = mkdtempSync(join(tmpdir(), 'sandbox-signin-avoid-'));
    const httpsPort = await freePortPair();
    const s = await startSandbox({ dataDir: pdir, port: httpsPort, avoidPorts: [httpsPort + 1] });
    try {
      assert.notEqual(new URL(s.signInUrl).port, String(httpsPort + 1));
    } finally {
      await s.close();
      rmSync(pdir, { recursive: true, force: true });
    }
  });
});

describe('discovery', () => {
  it('uses the GUID issuer for the tenant id and domain', async () => {
    for (const seg of [sb.tenantId, 'contoso.test']) {
      const r = await call(`/${seg}/v2.0/.well-known/openid-configuration`);
      assert.equal(r.status, 200);
      assert.equal(r.json.issuer, `${sb.url}/${sb.tenantId}/v2.0`);
      assert.equal(r.json.token_endpoint, `${sb.url}/${sb.tenantId}/oauth2/v2.0/token`);
      assert.ok(!('code_challenge_methods_supported' in r.json));
      assert.deepEqual(r.json.id_token_signing_alg_values_supported, ['RS256']);
    }
  });
  it('uses the {tenantid} template for common and organizations, MSA tenant for consumers', async () => {
    for (const seg of ['common', 'organizations']) {
      const r = await call(`/${seg}/v2.0/.well-known/openid-configuration`);
      assert.equal(r.json.issuer, `${sb.url}/{tenantid}/v2.0`);
      assert.equal(r.json.authorization_endpoint, `${sb.signInUrl}/${seg}/oauth2/v2.0/authorize`);
    }
    const c = await call('/consumers/v2.0/.well-known/openid-configuration');
    assert.equal(c.json.issuer, `${sb.url}/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0`);
  });
  it('answers an unknown tenant with AADSTS90002', async () => {
    const r = await call('/nope.example/v2.0/.well-known/openid-configuration');
    assert.equal(r.status, 400);
    assertEntraError(r.json, 'invalid_tenant', 90002);
  });
  it('publishes a JWKS with the token kid', async () => {
    const r = await call(`/${sb.tenantId}/discovery/v2.0/keys`);
    const kid = JSON.parse(Buffer.from(token.id_token.split('.')[0], 'base64url').toString()).kid;
    assert.equal(r.json.keys[0].kid, kid);
    assert.equal(r.json.keys[0].kty, 'RSA');
  });
});

describe('authorize', () => {
  const q = (extra: Record<string, string> = {}) => new URLSearchParams({
    client_id: SANDBOX_CLIENT_ID, redirect_uri: REDIRECT, response_type: 'code', scope: SCOPE, state: 'abc<>"', ...extra,
  });
  it('renders an escaped sign-in page with labelled fields and the app name', async () => {
    const r = await call(`/common/oauth2/v2.0/authorize?${q({ login_hint: 'alice@contoso.test' })}`);
    assert.equal(r.status, 200);
    assert.match(r.text, /<label for="username">/);
    assert.match(r.text, /<label for="password">/);
    assert.match(r.text, /mailbox-agent \(sandbox\)/);
    assert.match(r.text, /value="alice@contoso\.test"/);
    assert.match(r.text, /abc&lt;&gt;&quot;/);
    assert.doesNotMatch(r.text, /abc<>"/);
  });
  it('ignores the port of a localhost redirect URI but refuses other URIs with an error page', async () => {
    const ok = await call(`/common/oauth2/v2.0/authorize?${q({ redirect_uri: 'http://localhost:51234/auth/callback' })}`);
    assert.equal(ok.status, 200);
    const bad = await call(`/common/oauth2/v2.0/authorize?${q({ redirect_uri: 'http://evil.example/auth/callback' })}`);
    assert.equal(bad.status, 400);
    assert.match(bad.text, /AADSTS50011/);
    assert.equal(bad.headers.get('location'), null);
    const unknown = await call(`/common/oauth2/v2.0/authorize?${q({ client_id: '11111111-1111-1111-1111-111111111111' })}`);
    assert.match(unknown.text, /AADSTS700016/);
  });
  it('sends reportable errors to the redirect URI', async () => {
    const r = await call(`/common/oauth2/v2.0/authorize?${q({ response_type: 'token' })}`);
    assert.equal(r.status, 302);
    const loc = new URL(r.headers.get('location')!);
    assert.equal(loc.searchParams.get('error'), 'unsupported_response_type');
    assert.match(loc.searchParams.get('error_description')!, /^AADSTS700054: /);
    assert.equal(loc.searchParams.get('state'), 'abc<>"');
  });
  it('re-renders the page on a wrong password', async () => {
    const r = await signIn({ password: 'wrong' });
    assert.equal(r.status, 200);
    assert.match(r.text, /AADSTS50126/);
  });
  it('redirects with code, state and session_state', async () => {
    const r = await signIn({ state: 'xyz' });
    const loc = new URL(r.headers.get('location')!);
    assert.equal(loc.origin + loc.pathname, REDIRECT);
    assert.ok(loc.searchParams.get('code'));
    assert.equal(loc.searchParams.get('state'), 'xyz');
    assert.match(loc.searchParams.get('session_state')!, /^[0-9a-f-]{36}$/);
  });
});

describe('token endpoint', () => {
  it('issues Entra-shaped tokens for code + PKCE', () => {
    assert.equal(token.token_type, 'Bearer');
    assert.equal(typeof token.expires_in, 'number');
    assert.ok(token.refresh_token && token.id_token && token.access_token);
    assert.match(token.scope, /Mail\.ReadWrite/);
    const id = decodeJwt(token.id_token);
    assert.equal(id.iss, `${sb.url}/${sb.tenantId}/v2.0`);
    assert.equal(id.aud, SANDBOX_CLIENT_ID);
    assert.equal(id.tid, sb.tenantId);
    assert.equal(id.oid, sb.users[0]!.oid);
    assert.equal(id.preferred_username, 'alice@contoso.test');
    assert.equal(id.nonce, 'n-1');
    assert.equal(id.ver, '2.0');
    const at = decodeJwt(token.access_token);
    assert.equal(at.aud, 'https://graph.microsoft.com');
  });
  it('rejects a replayed code with AADSTS54005 and a wrong verifier with AADSTS501481', async () => {
    const { verifier, challenge } = pkce();
    const r = await signIn({ challenge });
    const code = new URL(r.headers.get('location')!).searchParams.get('code')!;
    const body = (v: string) => new URLSearchParams({ client_id: SANDBOX_CLIENT_ID, grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: v });
    const wrong = await call(`/${sb.tenantId}/oauth2/v2.0/token`, { method: 'POST', body: body('x'.repeat(43)) });
    assert.equal(wrong.status, 400);
    assertEntraError(wrong.json, 'invalid_grant', 501481);
    const ok = await call(`/${sb.tenantId}/oauth2/v2.0/token`, { method: 'POST', body: body(verifier) });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('cache-control'), 'no-store, no-cache');
    const replay = await call(`/${sb.tenantId}/oauth2/v2.0/token`, { method: 'POST', body: body(verifier) });
    assertEntraError(replay.json, 'invalid_grant', 54005);
  });
  it('rotates refresh tokens; the old one still works unless reuse detection is on', async () => {
    const t = await codeFlow('bob@contoso.test');
    const r1 = await refresh(t.refresh_token);
    assert.equal(r1.status, 200);
    assert.notEqual(r1.json.refresh_token, t.refresh_token);
    assert.equal((await refresh(t.refresh_token)).status, 200);
    sb.admin.setRevokeOnReuse(true);
    try {
      const reuse = await refresh(t.refresh_token);
      assertEntraError(reuse.json, 'invalid_grant', 70008);
      const fresh = await refresh(r1.json.refresh_token);
      assertEntraError(fresh.json, 'invalid_grant', 70008); // whole grant revoked
    } finally {
      sb.admin.setRevokeOnReuse(false);
    }
  });
  it('returns injected errors Entra-style, then recovers', async () => {
    const t = await codeFlow();
    sb.admin.injectTokenError('alice@contoso.test', { status: 400, error: 'invalid_grant', aadsts: 700082, suberror: 'bad_token' });
    const r = await refresh(t.refresh_token);
    assert.equal(r.status, 400);
    assertEntraError(r.json, 'invalid_grant', 700082);
    assert.equal(r.json.suberror, 'bad_token');
    assert.equal((await refresh(t.refresh_token)).status, 200);
    const log = sb.admin.tokenRequests();
    assert.ok(log.some((e) => e.grantType === 'refresh_token' && e.aadsts === 700082));
  });
  it('answers a revoked grant with AADSTS50173', async () => {
    const t = await codeFlow('bob@contoso.test');
    sb.admin.revokeGrants('bob@contoso.test');
    const r = await refresh(t.refresh_token);
    assertEntraError(r.json, 'invalid_grant', 50173);
  });
  it('supports client credentials for the confidential app', async () => {
    const r = await call(`/${sb.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      body: new URLSearchParams({
        client_id: sb.confidentialClient.clientId, client_secret: sb.confidentialClient.clientSecret,
        grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default',
      }),
    });
    assert.equal(r.status, 200, r.text);
    assert.ok(!('refresh_token' in r.json));
    const bad = await call(`/${sb.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      body: new URLSearchParams({ client_id: sb.confidentialClient.clientId, client_secret: 'nope', grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default' }),
    });
    assert.equal(bad.status, 401);
    assertEntraError(bad.json, 'invalid_client', 7000215);
  });
  it('runs the device code flow', async () => {
    const dc = await call(`/${sb.tenantId}/oauth2/v2.0/devicecode`, {
      method: 'POST', body: new URLSearchParams({ client_id: SANDBOX_CLIENT_ID, scope: SCOPE }),
    });
    assert.equal(dc.status, 200);
    assert.ok(dc.json.device_code && dc.json.user_code && dc.json.verification_uri && dc.json.interval);
    const poll = () => call(`/${sb.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      body: new URLSearchParams({ client_id: SANDBOX_CLIENT_ID, grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: dc.json.device_code }),
    });
    assert.equal((await poll()).json.error, 'authorization_pending');
    assert.equal((await poll()).json.error, 'slow_down');
    const page = await call('/devicelogin', { method: 'POST', body: new URLSearchParams({ otc: dc.json.user_code, username: 'alice@contoso.test', password: 'sandbox' }) });
    assert.match(page.text, /You have signed in/);
    const done = await poll();
    assert.equal(done.status, 200, done.text);
    assert.ok(done.json.refresh_token);
  });
});

describe('graph', () => {
  it('answers 401 InvalidAuthenticationToken with Graph headers and body', async () => {
    const r = await call('/v1.0/me', { headers: { 'client-request-id': 'abc-123' } });
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'InvalidAuthenticationToken');
    assert.equal(r.json.error.innerError['client-request-id'], 'abc-123');
    assert.ok(r.json.error.innerError['request-id'] && r.json.error.innerError.date);
    assert.equal(r.headers.get('client-request-id'), 'abc-123');
    assert.ok(r.headers.get('request-id'));
  });
  it('says the token is expired once it is', async () => {
    const clockDir = mkdtempSync(join(tmpdir(), 'sandbox-clock-'));
    let now = Date.now();
    const other = await startSandbox({ dataDir: clockDir, persist: false, now: () => now, accessTokenLifetimeSec: 60 });
    try {
      const saved = sb;
      sb = other;
      try {
        const t = await codeFlow();
        now += 10 * 60_000;
        const r = await call('/v1.0/me', { headers: { authorization: `Bearer ${t.access_token}` } });
        assert.equal(r.status, 401);
        assert.equal(r.json.error.message, 'Lifetime validation failed, the token is expired.');
      } finally {
        sb = saved;
      }
    } finally {
      await other.close();
      rmSync(clockDir, { recursive: true, force: true });
    }
  });
  it('returns /me and mailbox settings', async () => {
    const me = await graph('/me');
    assert.equal(me.status, 200);
    assert.equal(me.json.userPrincipalName, 'alice@contoso.test');
    assert.equal(me.json.id, sb.users[0]!.oid);
    const s = await graph('/me/mailboxSettings');
    assert.equal(s.json.timeZone, 'W. Europe Standard Time');
  });
  it('denies another user\'s mailbox to a delegated token', async () => {
    const r = await graph('/users/bob@contoso.test/messages');
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, 'ErrorAccessDenied');
  });
  it('pages inbox messages newest first with $top and nextLink', async () => {
    const p1 = await graph('/me/mailFolders/inbox/messages?$top=50&$select=subject,receivedDateTime,from');
    assert.equal(p1.status, 200);
    assert.equal(p1.json.value.length, 50);
    assert.ok(p1.json['@odata.nextLink']);
    assert.deepEqual(Object.keys(p1.json.value[0]).sort(), ['@odata.etag', 'from', 'id', 'receivedDateTime', 'subject']);
    const dates = p1.json.value.map((m: Json) => m.receivedDateTime);
    assert.deepEqual([...dates].sort().reverse(), dates);
    let count = p1.json.value.length;
    let next: string | undefined = p1.json['@odata.nextLink'];
    while (next) {
      const p = await call(next, { headers: { authorization: `Bearer ${token.access_token}` } });
      count += p.json.value.length;
      next = p.json['@odata.nextLink'];
    }
    assert.equal(count, sb.admin.messages('alice@contoso.test', 'inbox').length);
    const def = await graph('/me/messages');
    assert.equal(def.json.value.length, 10);
    const all = sb.admin.messages('alice@contoso.test', 'inbox');
    assert.ok(all.some((m) => /news\.example\.com$/.test(m.from)));
    assert.ok(all.some((m) => /^Invoice INV-/.test(m.subject)));
    assert.ok(all.some((m) => /urgent/i.test(m.subject)));
  });
  it('patches a message', async () => {
    const m = sb.admin.messages('alice@contoso.test', 'inbox').find((x) => !x.isRead)!;
    const r = await graph(`/me/messages/${m.id}`, { method: 'PATCH', body: JSON.stringify({ isRead: true, flag: { flagStatus: 'flagged' }, categories: ['Urgent'] }) });
    assert.equal(r.status, 200);
    assert.equal(r.json.isRead, true);
    assert.deepEqual(r.json.flag, { flagStatus: 'flagged' });
    const after = sb.admin.messages('alice@contoso.test', 'inbox').find((x) => x.id === m.id)!;
    assert.equal(after.isRead, true);
    const bad = await graph(`/me/messages/${m.id}`, { method: 'PATCH', body: '{not json' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'BadRequest');
    const missing = await graph('/me/messages/AAMkAGnope=');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'ErrorItemNotFound');
  });
  it('creates folders, refuses duplicates, finds by $filter', async () => {
    const c = await graph('/me/mailFolders', { method: 'POST', body: JSON.stringify({ displayName: 'Newsletters' }) });
    assert.equal(c.status, 201);
    const dup = await graph('/me/mailFolders', { method: 'POST', body: JSON.stringify({ displayName: 'newsletters' }) });
    assert.equal(dup.status, 409);
    assert.equal(dup.json.error.code, 'ErrorFolderExists');
    const f = await graph(`/me/mailFolders?$filter=${encodeURIComponent("displayName eq 'Newsletters'")}`);
    assert.equal(f.json.value.length, 1);
    assert.equal(f.json.value[0].id, c.json.id);
    const child = await graph(`/me/mailFolders/${c.json.id}/childFolders`, { method: 'POST', body: JSON.stringify({ displayName: 'Weekly' }) });
    assert.equal(child.json.parentFolderId, c.json.id);
  });
  it('moves to a new id by default and keeps the id with ImmutableId', async () => {
    const [a, b] = sb.admin.messages('alice@contoso.test', 'inbox');
    const moved = await graph(`/me/messages/${a!.id}/move`, { method: 'POST', body: JSON.stringify({ destinationId: 'archive' }) });
    assert.equal(moved.status, 201);
    assert.notEqual(moved.json.id, a!.id);
    assert.equal((await graph(`/me/messages/${a!.id}`)).status, 404);
    const imm = { Prefer: 'IdType="ImmutableId"' };
    const got = await graph(`/me/messages/${b!.id}?$select=id`, { headers: imm });
    const immutableId = got.json.id;
    const moved2 = await graph(`/me/messages/${immutableId}/move`, { method: 'POST', headers: imm, body: JSON.stringify({ destinationId: 'archive' }) });
    assert.equal(moved2.status, 201);
    assert.equal(moved2.json.id, immutableId);
    assert.equal(moved2.headers.get('preference-applied'), 'IdType="ImmutableId"');
  });
  it('runs delta: initial pages, then only changes, with @removed for moved-out mail', async () => {
    const maxpage = { Prefer: 'odata.maxpagesize=100' };
    let link: string | undefined = '/v1.0/me/mailFolders/inbox/messages/delta?$select=subject,isRead';
    const seen = new Set<string>();
    let deltaLink: string | undefined;
    let first = true;
    while (link) {
      const r = await call(link, { headers: { authorization: `Bearer ${token.access_token}`, ...maxpage } });
      assert.equal(r.status, 200, r.text);
      if (first) assert.equal(r.headers.get('preference-applied'), 'odata.maxpagesize=100');
      first = false;
      assert.ok(r.json.value.length <= 100);
      for (const m of r.json.value) seen.add(m.id);
      link = r.json['@odata.nextLink'];
      deltaLink = r.json['@odata.deltaLink'];
    }
    assert.equal(seen.size, sb.admin.messages('alice@contoso.test', 'inbox').length);
    const quiet = await call(deltaLink!, { headers: { authorization: `Bearer ${token.access_token}` } });
    assert.equal(quiet.json.value.length, 0);
    // change one, move one out, and a new one arrives
    const [x, y] = sb.admin.messages('alice@contoso.test', 'inbox');
    await graph(`/me/messages/${x!.id}`, { method: 'PATCH', body: JSON.stringify({ isRead: !x!.isRead }) });
    await graph(`/me/messages/${y!.id}/move`, { method: 'POST', body: JSON.stringify({ destinationId: 'deleteditems' }) });
    const arrived = sb.admin.deliver('alice@contoso.test', { subject: 'Fresh mail', from: 'weekly@news.example.com' });
    const d = await call(deltaLink!, { headers: { authorization: `Bearer ${token.access_token}` } });
    const ids = d.json.value.map((m: Json) => m.id);
    assert.ok(ids.includes(x!.id));
    assert.ok(ids.includes(arrived.id));
    const removed = d.json.value.find((m: Json) => m['@removed']);
    assert.equal(removed.id, y!.id);
    assert.ok(d.json['@odata.deltaLink']);
    assert.equal(d.json.value.length, 3);
  });
  it('throttles beyond 4 concurrent requests per mailbox', async () => {
    sb.admin.setLatency(150);
    try {
      const results = await Promise.all(Array.from({ length: 6 }, () => graph('/me/mailFolders/inbox')));
      const throttled = results.filter((r) => r.status === 429);
      assert.equal(throttled.length, 2);
      assert.equal(throttled[0]!.json.error.code, 'ApplicationThrottled');
      assert.ok(throttled[0]!.headers.get('retry-after'));
    } finally {
      sb.admin.setLatency(0);
    }
  });
  it('accepts sendMail with 202 and stores a copy in Sent Items', async () => {
    const before = sb.admin.messages('alice@contoso.test', 'sentitems').length;
    const r = await graph('/me/sendMail', {
      method: 'POST',
      body: JSON.stringify({ message: { subject: 'Digest', body: { contentType: 'Text', content: 'hi' }, toRecipients: [{ emailAddress: { address: 'bob@contoso.test' } }] } }),
    });
    assert.equal(r.status, 202);
    assert.equal(r.text, '');
    assert.equal(sb.admin.messages('alice@contoso.test', 'sentitems').length, before + 1);
  });
  it('forward needs Mail.Send, not Mail.ReadWrite, as in Graph', async () => {
    const [m] = sb.admin.messages('alice@contoso.test', 'inbox');
    // A grant of its own, narrowed per refresh (each refresh rotates the refresh token).
    let rt = (await codeFlow()).refresh_token as string;
    const narrowed = async (scope: string) => {
      const r = await call(`/${sb.tenantId}/oauth2/v2.0/token`, {
        method: 'POST', body: new URLSearchParams({ client_id: SANDBOX_CLIENT_ID, grant_type: 'refresh_token', refresh_token: rt, scope }),
      });
      assert.equal(r.status, 200, r.text);
      rt = r.json.refresh_token;
      return r.json;
    };
    const forward = (t: Json) => call(`/v1.0/me/messages/${m!.id}/forward`, {
      method: 'POST', headers: { authorization: `Bearer ${t.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ comment: '', toRecipients: [{ emailAddress: { address: 'bob@contoso.test' } }] }),
    });
    const sendOnly = await narrowed('https://graph.microsoft.com/Mail.Send');
    assert.equal((await forward(sendOnly)).status, 202);
    const readWriteOnly = await narrowed('https://graph.microsoft.com/Mail.ReadWrite');
    const denied = await forward(readWriteOnly);
    assert.equal(denied.status, 403);
    assert.equal(denied.json.error.code, 'ErrorAccessDenied');
  });
  it('exposes the admin over HTTP', async () => {
    const r = await call('/_sandbox/mailbox/alice@contoso.test/messages?folder=inbox');
    assert.equal(r.status, 200);
    assert.ok(Array.isArray(r.json));
    const log = await call('/_sandbox/log');
    assert.ok(log.json.graphRequests.length > 0);
  });
});

describe('persistence', () => {
  it('keeps refresh tokens and the mailbox across a restart', async () => {
    const pdir = mkdtempSync(join(tmpdir(), 'sandbox-persist-'));
    try {
      let s = await startSandbox({ dataDir: pdir });
      const saved = sb;
      sb = s;
      let t: Json;
      const first = sb.admin.messages('alice@contoso.test', 'inbox')[0]!;
      try {
        t = await codeFlow();
        token = t;
        await graph(`/me/messages/${first.id}`, { method: 'PATCH', body: JSON.stringify({ categories: ['Kept'] }) });
        const caBefore = s.caPem;
        await s.close();
        s = await startSandbox({ dataDir: pdir });
        sb = s;
        assert.equal(s.caPem, caBefore);
        const r = await refresh(t.refresh_token);
        assert.equal(r.status, 200, r.text);
        const again = sb.admin.messages('alice@contoso.test', 'inbox').find((m) => m.id === first.id)!;
        assert.deepEqual(again.categories, ['Kept']);
      } finally {
        sb = saved;
        token = (await codeFlow());
        await s.close();
      }
    } finally {
      rmSync(pdir, { recursive: true, force: true });
    }
  });
});

describe('app registration settings (issue 11: each registration trap happens for real)', () => {
  const MSA = '9188040d-6c67-4c5b-b112-36a304b66dad';
  const admin = () => sb.admin;
  const token = (tenant: string, params: Record<string, string>, headers: Record<string, string> = {}) =>
    call(`/${tenant}/oauth2/v2.0/token`, { method: 'POST', headers, body: new URLSearchParams({ client_id: SANDBOX_CLIENT_ID, ...params }) });
  /** Signs in at `tenant` and returns the redirect (code or error) and the PKCE verifier. */
  async function codeAt(tenant: string, user = 'alice@contoso.test') {
    const { verifier, challenge } = pkce();
    const r = await signIn({ tenant, user, challenge });
    return { r, verifier, location: r.headers.get('location') ? new URL(r.headers.get('location')!) : undefined };
  }
  after(() => admin().setAppRegistration(SANDBOX_CLIENT_ID, null));

  it('defaults keep what the sandbox always did, and the admin route shows and changes them', async () => {
    const shown = await call(`/_sandbox/apps/${SANDBOX_CLIENT_ID}/registration`);
    assert.equal(shown.json.publicClientFlows, true);
    assert.equal(shown.json.audience, 'AzureADandPersonalMicrosoftAccount');
    assert.ok(shown.json.redirectUris.every((r: Json) => r.platform === 'publicClient'));
    const changed = await call(`/_sandbox/apps/${SANDBOX_CLIENT_ID}/registration`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ audience: 'AzureADMyOrg' }) });
    assert.equal(changed.json.audience, 'AzureADMyOrg');
    assert.equal(changed.json.publicClientFlows, true, 'a setting not given keeps its value');
    const bad = await call(`/_sandbox/apps/${SANDBOX_CLIENT_ID}/registration`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirectUris: [{ uri: REDIRECT, platform: 'desktop' }] }) });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /platform .* must be one of web, spa, publicClient/);
    const reset = await call(`/_sandbox/apps/${SANDBOX_CLIENT_ID}/registration`, { method: 'DELETE' });
    assert.equal(reset.json.audience, 'AzureADandPersonalMicrosoftAccount');
  });

  it('public client flows off: the device code is issued, its poll answers 401 invalid_client AADSTS7000218', async () => {
    admin().setAppRegistration(SANDBOX_CLIENT_ID, { publicClientFlows: false });
    const dc = await call(`/${sb.tenantId}/oauth2/v2.0/devicecode`, { method: 'POST', body: new URLSearchParams({ client_id: SANDBOX_CLIENT_ID, scope: SCOPE }) });
    assert.equal(dc.status, 200, dc.text);
    const poll = await token(sb.tenantId, { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: dc.json.device_code });
    assert.equal(poll.status, 401);
    assertEntraError(poll.json, 'invalid_client', 7000218);
    assert.match(poll.json.error_description, /^AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'\./);
    // A code for a "Mobile and desktop" redirect URI is still redeemed without a secret; one for a "Web" URI is not.
    const desktop = await codeAt(sb.tenantId);
    const ok = await token(sb.tenantId, { grant_type: 'authorization_code', code: desktop.location!.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: desktop.verifier });
    assert.equal(ok.status, 200, ok.text);
    admin().setAppRegistration(SANDBOX_CLIENT_ID, { redirectUris: [{ uri: 'http://localhost/auth/callback', platform: 'web' }] });
    const web = await codeAt(sb.tenantId);
    const refused = await token(sb.tenantId, { grant_type: 'authorization_code', code: web.location!.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: web.verifier });
    assert.equal(refused.status, 401);
    assertEntraError(refused.json, 'invalid_client', 7000218);
    admin().setAppRegistration(SANDBOX_CLIENT_ID, null);
  });

  it('single-tenant app at /common or /organizations: AADSTS50194 to the redirect URI, and from the device code endpoint', async () => {
    admin().setAppRegistration(SANDBOX_CLIENT_ID, { audience: 'AzureADMyOrg' });
    for (const tenant of ['common', 'organizations']) {
      const { r, location } = await codeAt(tenant);
      assert.equal(r.status, 302, r.text);
      assert.equal(location!.origin + location!.pathname, REDIRECT);
      assert.equal(location!.searchParams.get('error'), 'invalid_request');
      assert.equal(location!.searchParams.get('state'), 'st-1');
      assert.match(location!.searchParams.get('error_description')!, new RegExp(`^AADSTS50194: Application '${SANDBOX_CLIENT_ID}'\\(mailbox-agent \\(sandbox\\)\\) is not configured as a multi-tenant application\\. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'\\. Use a tenant-specific endpoint or configure the application to be multi-tenant\\.\\r\\nTrace ID: [0-9a-f-]{36}\\r\\nCorrelation ID`));
      const dc = await call(`/${tenant}/oauth2/v2.0/devicecode`, { method: 'POST', body: new URLSearchParams({ client_id: SANDBOX_CLIENT_ID, scope: SCOPE }) });
      assert.equal(dc.status, 400);
      assertEntraError(dc.json, 'invalid_request', 50194);
    }
    const home = await codeAt(sb.tenantId);
    assert.ok(home.location!.searchParams.get('code'), 'the tenant-specific endpoint still works');
    admin().setAppRegistration(SANDBOX_CLIENT_ID, null);
  });

  it('a "Single-page application" redirect URI: redeemed without Origin → AADSTS9002327; with Origin it works and its refresh token dies after 24 h (AADSTS700084)', async () => {
    admin().setAppRegistration(SANDBOX_CLIENT_ID, { redirectUris: [{ uri: 'http://localhost/auth/callback', platform: 'spa' }] });
    try {
      const first = await codeAt(sb.tenantId);
      const server = await token(sb.tenantId, { grant_type: 'authorization_code', code: first.location!.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: first.verifier });
      assert.equal(server.status, 400);
      assertEntraError(server.json, 'invalid_request', 9002327);
      assert.match(server.json.error_description, /Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests\./);
      const origin = { origin: 'http://localhost:3000' };
      const second = await codeAt(sb.tenantId);
      const browser = await token(sb.tenantId, { grant_type: 'authorization_code', code: second.location!.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: second.verifier }, origin);
      assert.equal(browser.status, 200, browser.text);
      const noOrigin = await token(sb.tenantId, { grant_type: 'refresh_token', refresh_token: browser.json.refresh_token });
      assertEntraError(noOrigin.json, 'invalid_request', 9002327);
      const rotated = await token(sb.tenantId, { grant_type: 'refresh_token', refresh_token: browser.json.refresh_token }, origin);
      assert.equal(rotated.status, 200, rotated.text);
      admin().setClockOffset(24 * 3600_000 + 60_000);
      const late = await token(sb.tenantId, { grant_type: 'refresh_token', refresh_token: rotated.json.refresh_token }, origin);
      assert.equal(late.status, 400);
      assertEntraError(late.json, 'invalid_grant', 700084);
    } finally {
      admin().setClockOffset(0);
      admin().setAppRegistration(SANDBOX_CLIENT_ID, null);
    }
  });

  it('a personal account (carol@outlook.test) at /consumers: MSA tenant id, opaque access token, Graph works but mailboxSettings is 403', async () => {
    const disc = await call('/consumers/v2.0/.well-known/openid-configuration');
    assert.equal(disc.json.issuer, `${sb.url}/${MSA}/v2.0`);
    const refusedOrg = await signIn({ tenant: 'consumers', user: 'alice@contoso.test' });
    assert.equal(refusedOrg.status, 200);
    assert.match(refusedOrg.text, /AADSTS50034/);
    const refusedHere = await signIn({ tenant: 'organizations', user: 'carol@outlook.test' });
    assert.match(refusedHere.text, /AADSTS50034/, 'a personal account is not in any organisation');
    const { location, verifier } = await codeAt('consumers', 'carol@outlook.test');
    const t = await token('consumers', { grant_type: 'authorization_code', code: location!.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier });
    assert.equal(t.status, 200, t.text);
    assert.ok(!t.json.access_token.includes('.'), 'not a JWT');
    const id = decodeJwt(t.json.id_token);
    assert.equal(id.tid, MSA);
    assert.equal(id.iss, `${sb.url}/${MSA}/v2.0`);
    assert.equal(id.preferred_username, 'carol@outlook.test');
    const as = (path: string, access = t.json.access_token as string) => call(`/v1.0${path}`, { headers: { authorization: `Bearer ${access}` } });
    assert.equal((await as('/me')).json.userPrincipalName, 'carol@outlook.test');
    assert.equal((await as('/me/mailFolders/inbox/messages?$top=1')).status, 200);
    const settings = await as('/me/mailboxSettings');
    assert.equal(settings.status, 403);
    assert.equal(settings.json.error.code, 'ErrorAccessDenied');
    assert.equal(settings.json.error.message, 'Access is denied. Check credentials and try again.');
    assert.equal((await as('/me', 'EwBnotAtokenWeIssued')).status, 401);
    const refreshed = await token('consumers', { grant_type: 'refresh_token', refresh_token: t.json.refresh_token });
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.ok(!refreshed.json.access_token.includes('.'));
  });

  it('an app not registered for personal accounts cannot be used at /consumers', async () => {
    admin().setAppRegistration(SANDBOX_CLIENT_ID, { audience: 'AzureADMultipleOrgs' });
    try {
      const { r } = await codeAt('consumers', 'carol@outlook.test');
      assert.equal(r.status, 400);
      assert.match(r.text, /unauthorized_client: The client does not exist or is not enabled for consumers/);
    } finally {
      admin().setAppRegistration(SANDBOX_CLIENT_ID, null);
    }
  });
});
