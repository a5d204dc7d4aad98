import assert from 'node:assert/strict';
import { constants, createPrivateKey, randomUUID, sign } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCertificate, type CreatedCertificate } from '../../src/auth/certificates.ts';
import { createFetch, type FetchLike } from '../../src/config/transport.ts';
import { SANDBOX_CLIENT_SECRET, SANDBOX_CONFIDENTIAL_CLIENT_ID, SANDBOX_TENANT_ID, startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { decodeJwt } from '../../src/sandbox/jwt.ts';

/** The sandbox's client credentials with a certificate assertion, verified as Entra does, and its access controls. */

const APP = SANDBOX_CONFIDENTIAL_CLIENT_ID;
const ALICE = 'alice@contoso.test';
const BOB = 'bob@contoso.test';

describe('sandbox: app-only client credentials and confinement', () => {
  let sb: Sandbox;
  let f: FetchLike;
  let registered: CreatedCertificate;
  let stranger: CreatedCertificate;
  let tokenUrl: string;

  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ma-sb-app-'));
    sb = await startSandbox({ dataDir: path.join(dir, 'sandbox'), port: 0, persist: false });
    f = createFetch({ origins: [sb.url], caPem: sb.caPem });
    // 2048 bits keeps this file fast; the default (3072) is exercised by the CLI tests.
    registered = createCertificate({ dir: path.join(dir, 'registered'), bits: 2048 });
    stranger = createCertificate({ dir: path.join(dir, 'stranger'), bits: 2048 });
    tokenUrl = `${sb.url}/${SANDBOX_TENANT_ID}/oauth2/v2.0/token`;
    const keyCredentials = readFileSync(registered.keyCredentialsPath, 'utf8');
    const response = await f(`${sb.url}/_sandbox/apps/${APP}/certificates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: keyCredentials });
    assert.equal(response.status, 201);
  });
  after(() => sb.close());

  function assertion(cert: CreatedCertificate, o: { alg?: 'PS256' | 'RS256'; aud?: string; exp?: number; nbf?: number; jti?: string; iss?: string } = {}): string {
    const alg = o.alg ?? 'PS256';
    const header = alg === 'PS256' ? { alg, typ: 'JWT', 'x5t#S256': cert.facts.x5tS256 } : { alg, typ: 'JWT', x5t: Buffer.from(cert.facts.thumbprintSha1, 'hex').toString('base64url') };
    const now = Math.floor(Date.now() / 1000);
    const claims = { aud: o.aud ?? tokenUrl, iss: o.iss ?? APP, sub: o.iss ?? APP, jti: o.jti ?? randomUUID(), nbf: o.nbf ?? now, exp: o.exp ?? now + 600 };
    const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const key = createPrivateKey(readFileSync(cert.keyPath, 'utf8'));
    const signature = alg === 'PS256'
      ? sign('sha256', Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
      : sign('sha256', Buffer.from(input), key);
    return `${input}.${signature.toString('base64url')}`;
  }

  async function token(params: Record<string, string>) {
    const response = await f(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: APP, grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default', ...params }).toString(),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }
  const withAssertion = (a: string) => token({ client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: a });

  test('a PS256 assertion with x5t#S256 of a registered certificate yields an app token with roles', async () => {
    const r = await withAssertion(assertion(registered));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const claims = decodeJwt(String(r.body.access_token));
    assert.equal(claims.idtyp, 'app');
    assert.equal(claims.appid, APP);
    assert.deepEqual(claims.roles, ['Mail.ReadWrite', 'Mail.Send', 'MailboxSettings.Read', 'Calendars.Read', 'Calendars.ReadWrite', 'Contacts.Read', 'Files.ReadWrite', 'User.Read.All']);
    assert.equal(r.body.refresh_token, undefined);
  });

  test('the older RS256 + x5t (SHA-1) form is accepted too', async () => {
    assert.equal((await withAssertion(assertion(registered, { alg: 'RS256' }))).status, 200);
  });

  test('the same assertion again is accepted (msal-node re-sends its assertion); a new one reusing the jti is not', async () => {
    const jti = randomUUID();
    const first = assertion(registered, { jti });
    assert.equal((await withAssertion(first)).status, 200);
    assert.equal((await withAssertion(first)).status, 200);
    const replay = await withAssertion(assertion(registered, { jti, exp: Math.floor(Date.now() / 1000) + 500 }));
    assert.equal(replay.status, 401);
    assert.match(String(replay.body.error_description), /^AADSTS700027: .*jti/);
  });

  test('a certificate not registered on the app: 401 invalid_client AADSTS700027, key not found', async () => {
    const r = await withAssertion(assertion(stranger));
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'invalid_client');
    assert.deepEqual(r.body.error_codes, [700027]);
    assert.match(String(r.body.error_description), /The key was not found\., Thumbprint of key used by client: '[0-9A-F]{64}'/);
  });

  test('a wrong audience, a foreign issuer, an expired assertion and a forged signature are refused', async () => {
    const aud = await withAssertion(assertion(registered, { aud: `${sb.url}/common/oauth2/v2.0/token` }));
    assert.deepEqual([aud.status, aud.body.error_codes], [401, [700027]]);
    const iss = await withAssertion(assertion(registered, { iss: '11111111-1111-1111-1111-111111111111' }));
    assert.deepEqual([iss.status, iss.body.error_codes], [401, [700021]]);
    const old = Math.floor(Date.now() / 1000) - 3600;
    const expired = await withAssertion(assertion(registered, { nbf: old, exp: old + 600 }));
    assert.deepEqual([expired.status, expired.body.error_codes], [401, [700024]]);
    assert.match(String(expired.body.error_description), /not within its valid time range/);
    const genuine = assertion(registered).split('.');
    const forged = `${genuine[0]}.${Buffer.from(JSON.stringify({ aud: tokenUrl, iss: APP, sub: APP, jti: randomUUID(), nbf: 0, exp: 9999999999 })).toString('base64url')}.${genuine[2]}`;
    const bad = await withAssertion(forged);
    assert.deepEqual([bad.status, bad.body.error_codes], [401, [700027]]);
    assert.match(String(bad.body.error_description), /did not match the expected signature value/);
  });

  test('the tenant may be named by its domain in aud', async () => {
    assert.equal((await withAssertion(assertion(registered, { aud: `${sb.url}/contoso.test/oauth2/v2.0/token` }))).status, 200);
  });

  test('secrets: a wrong one is AADSTS7000215, an expired one AADSTS7000222', async () => {
    const wrong = await token({ client_secret: 'nope' });
    assert.deepEqual([wrong.status, wrong.body.error_codes], [401, [7000215]]);
    await f(`${sb.url}/_sandbox/apps/${APP}/secret`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"expired":true}' });
    const expired = await token({ client_secret: SANDBOX_CLIENT_SECRET });
    assert.deepEqual([expired.status, expired.body.error_codes], [401, [7000222]]);
    sb.admin.setSecretExpired(APP, false);
    assert.equal((await token({ client_secret: SANDBOX_CLIENT_SECRET })).status, 200);
  });

  test('an access policy that is off, propagating or on, with the real 403 body', async () => {
    const access = String((await token({ client_secret: SANDBOX_CLIENT_SECRET })).body.access_token);
    const read = async (upn: string) => {
      const r = await f(`${sb.url}/v1.0/users/${upn}/mailFolders/inbox?$select=id`, { headers: { authorization: `Bearer ${access}` } });
      return { status: r.status, body: (await r.json()) as { error?: { code: string; message: string } } };
    };
    const policy = (body: unknown) => f(`${sb.url}/_sandbox/policy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal((await read(BOB)).status, 200, 'no policy: the whole tenant');
    await policy({ clientId: APP, mailboxes: [ALICE], state: 'propagating' });
    assert.equal((await read(BOB)).status, 200, 'propagating: not enforced yet');
    await policy({ clientId: APP, mailboxes: [ALICE] });
    const denied = await read(BOB);
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error?.code, 'ErrorAccessDenied');
    assert.match(denied.body.error!.message, /^Access to OData is disabled\./);
    assert.equal((await read(ALICE)).status, 200);
    await policy({ clientId: APP, mailboxes: null });
    assert.equal((await read(BOB)).status, 200);
  });

  test('RBAC for Applications: grants within its scope, confines only without the unscoped Entra roles', async () => {
    const rbac = (body: unknown) => f(`${sb.url}/_sandbox/rbac`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const read = async (access: string, upn: string) => {
      const r = await f(`${sb.url}/v1.0/users/${upn}/messages?$top=1&$select=id`, { headers: { authorization: `Bearer ${access}` } });
      return { status: r.status, body: (await r.json()) as { error?: { code: string; message: string } } };
    };
    await rbac({ clientId: APP, mailboxes: [ALICE], roles: ['Mail.Read'] });
    const withEntra = String((await token({ client_secret: SANDBOX_CLIENT_SECRET })).body.access_token);
    assert.equal((await read(withEntra, BOB)).status, 200, 'the Entra grant still reaches every mailbox');
    await f(`${sb.url}/_sandbox/apps/${APP}/roles`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"roles":[]}' });
    const scopedOnly = String((await token({ client_secret: SANDBOX_CLIENT_SECRET })).body.access_token);
    assert.equal(decodeJwt(scopedOnly).roles?.toString(), '');
    assert.equal((await read(scopedOnly, ALICE)).status, 200);
    const denied = await read(scopedOnly, BOB);
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error?.code, 'ExtensionError');
    assert.match(denied.body.error!.message, /Access is denied/);
    await rbac({ clientId: APP, mailboxes: [ALICE], roles: ['Mail.Read'], state: 'propagating' });
    assert.equal((await read(scopedOnly, ALICE)).status, 403, 'a propagating scope grants nothing yet');
    await rbac({ clientId: APP, mailboxes: null });
    sb.admin.setGrantedRoles(APP, null);
  });

  test('admin API validation names the problem', async () => {
    const bad = await f(`${sb.url}/_sandbox/apps/${APP}/certificates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /pem .* key .* keyCredentials/);
    const state = await f(`${sb.url}/_sandbox/policy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ clientId: APP, mailboxes: [ALICE], state: 'soon' }) });
    assert.equal(state.status, 400);
  });
});
