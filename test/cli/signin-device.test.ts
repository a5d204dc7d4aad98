import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { onTheDevicePage, startDeviceSignin } from '../helpers/cli.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

describe('mailbox-agent signin --device', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('prints the URL and code, polls, and stores the sign-in like the browser flow; jobs run', async () => {
    const run = startDeviceSignin(h.env, h.dir);
    const { url, userCode } = await run.code;
    assert.equal(url, `${h.sandbox.signInUrl}/devicelogin`);
    assert.match(userCode, /^[A-Z0-9]{9}$/);
    assert.match(await onTheDevicePage(h.fetch, url, userCode, { user: 'alice@contoso.test' }), /You have signed in/);
    const { code, stdout, stderr } = await run.exit;
    assert.equal(code, 0, stderr);
    assert.match(stdout, /Signed in as alice@contoso\.test/);
    const polls = h.sandbox.admin.tokenRequests().filter((r) => /device_code/.test(r.grantType));
    assert.ok(polls.length >= 1 && polls.every((p, i) => i === polls.length - 1 ? p.status === 200 : p.error === 'authorization_pending'), JSON.stringify(polls));
    const status = await h.rt.auth.status();
    assert.equal(status.state, 'ready');
    assert.equal(status.account?.upn, 'alice@contoso.test');
    assert.equal(status.account?.tid, h.sandbox.tenantId, 'the tenant is pinned from the id_token');
    const result = (await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', 'localhost:3000')).body;
    assert.equal(result.ok, true, result.error);
  });

  test('a different person is refused like in the browser flow, and nothing is stored', async () => {
    const before = await h.rt.store.getSecret<{ refreshToken: string }>('auth:tokens');
    const run = startDeviceSignin(h.env, h.dir);
    const { url, userCode } = await run.code;
    await onTheDevicePage(h.fetch, url, userCode, { user: 'bob@contoso.test' });
    const { code, stderr } = await run.exit;
    assert.equal(code, 2);
    assert.match(stderr, /bob@contoso\.test signed in, but the agent already belongs to alice@contoso\.test/);
    assert.deepEqual(await h.rt.store.getSecret('auth:tokens'), before);
  });

  test('declined on the device page: exits 2 and says so', async () => {
    const run = startDeviceSignin(h.env, h.dir);
    const { url, userCode } = await run.code;
    await onTheDevicePage(h.fetch, url, userCode, 'cancel');
    const { code, stderr } = await run.exit;
    assert.equal(code, 2);
    assert.match(stderr, /declined/);
  });
});
