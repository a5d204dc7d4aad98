import assert from 'node:assert/strict';
import { afterEach, before, after, describe, test } from 'node:test';
import { SANDBOX_CLIENT_ID } from '../../src/sandbox/directory.ts';
import { cli, startDeviceSignin } from '../helpers/cli.ts';
import { hostOf, signIn, startHarness, type Harness } from '../helpers/harness.ts';

/**
 * Issue 11 item 1: the app registration mistakes a person really makes, each produced by the sandbox's registration
 * settings (not injected), each met through the agent with the exact fix in words and state needs-config: a new
 * sign-in would not help, so nothing offers one.
 */
describe('registration traps, as Entra really answers them', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());
  afterEach(async () => {
    h.sandbox.admin.setAppRegistration(SANDBOX_CLIENT_ID, null);
    await h.rt.auth.signout();
  });

  /** `status --json` from the installed binary: needs-config, a remedy containing `fix`, and no sign-in offered. */
  async function assertNeedsConfig(fix: RegExp) {
    const r = await cli(['status', '--json'], h.env, h.dir);
    const status = JSON.parse(r.stdout) as { state: string; reason?: string; remedy?: string };
    assert.equal(status.state, 'needs-config', r.stdout + r.stderr);
    assert.match(status.remedy ?? '', fix);
    assert.doesNotMatch(`${status.reason} ${status.remedy}`, /sign in again|sign in:|try again|\/auth\/signin|signin --device/i, 'a new sign-in is not the fix');
    assert.equal(r.code, 2, 'a person is needed');
  }

  test('device code with "Allow public client flows: No": exit 2, the message names the setting, status needs-config', async () => {
    h.sandbox.admin.setAppRegistration(SANDBOX_CLIENT_ID, { publicClientFlows: false });
    const run = startDeviceSignin(h.env, h.dir);
    await run.code; // Entra issues the code; the poll is what fails (docs/microsoft-notes.md "Registration traps")
    const { code, stderr } = await run.exit;
    assert.equal(code, 2, stderr);
    assert.match(stderr, /does not allow public client flows.*\(AADSTS7000218\)/);
    assert.match(stderr, /"Allow public client flows" and set it to Yes/);
    assert.doesNotMatch(stderr, /MS_CLIENT_SECRET/, 'a public client has no secret to check');
    const poll = h.sandbox.admin.tokenRequests().filter((t) => /device_code/.test(t.grantType)).at(-1);
    assert.equal(poll?.aadsts, 7000218);
    await assertNeedsConfig(/Allow public client flows/);
  });

  test('a single-tenant app with MS_TENANT=common: the callback page says to set MS_TENANT to the tenant id', async () => {
    h.sandbox.admin.setAppRegistration(SANDBOX_CLIENT_ID, { audience: 'AzureADMyOrg' });
    const start = await h.http.get('/auth/signin').set('Host', hostOf(h)).expect(302);
    assert.match(start.headers.location as string, /\/common\/oauth2\/v2\.0\/authorize/);
    const answer = await h.fetch(start.headers.location as string, { redirect: 'manual' });
    const callback = new URL(answer.headers.get('location') ?? '');
    assert.equal(callback.searchParams.get('error'), 'invalid_request');
    const page = await h.http.get(callback.pathname + callback.search).set('Host', hostOf(h));
    assert.equal(page.status, 400);
    assert.match(page.text, /AADSTS50194/);
    assert.match(page.text, /Set MS_TENANT in \.env to your Directory \(tenant\) ID/);
    assert.doesNotMatch(page.text, /Try again/);
    await assertNeedsConfig(/MS_TENANT/);
  });

  test('a redirect URI under "Single-page application": AADSTS9002327 at redemption, the fix names "Mobile and desktop applications"', async () => {
    h.sandbox.admin.setAppRegistration(SANDBOX_CLIENT_ID, { redirectUris: [{ uri: 'http://localhost/auth/callback', platform: 'spa' }] });
    const { response } = await signIn(h);
    assert.equal(response.status, 400);
    assert.match(response.text, /AADSTS9002327/);
    assert.match(response.text, /&quot;Mobile and desktop applications&quot;|"Mobile and desktop applications"/);
    const redeem = h.sandbox.admin.tokenRequests().filter((t) => t.grantType === 'authorization_code').at(-1);
    assert.equal(redeem?.aadsts, 9002327, 'the sandbox refused it for real');
    await assertNeedsConfig(/Mobile and desktop applications/);
  });

  test('once the registration is fixed, a sign-in works and clears needs-config', async () => {
    h.sandbox.admin.setAppRegistration(SANDBOX_CLIENT_ID, { audience: 'AzureADMyOrg' });
    const start = await h.http.get('/auth/signin').set('Host', hostOf(h)).expect(302);
    const answer = await h.fetch(start.headers.location as string, { redirect: 'manual' });
    const callback = new URL(answer.headers.get('location') ?? '');
    await h.http.get(callback.pathname + callback.search).set('Host', hostOf(h)).expect(400);
    assert.equal((await h.rt.auth.status()).state, 'needs-config');
    h.sandbox.admin.setAppRegistration(SANDBOX_CLIENT_ID, null);
    const { response } = await signIn(h);
    assert.equal(response.status, 303, response.text);
    assert.equal((await h.rt.auth.status()).state, 'ready');
  });
});
