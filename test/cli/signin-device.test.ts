import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseForm, REPO, startHarness, type Harness } from '../helpers/harness.ts';

const BIN = path.join(REPO, 'src/cli/bin.js');

/** Starts `mailbox-agent signin --device`; resolves the URL and code as soon as it prints them. */
function startDeviceSignin(h: Harness, extraEnv: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, 'signin', '--device'], { cwd: h.dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...h.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = new Promise<{ url: string; userCode: string }>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      const url = /URL: +(\S+)/.exec(stdout)?.[1];
      const userCode = /code: +(\S+)/.exec(stdout)?.[1];
      if (url && userCode) resolve({ url, userCode });
    });
    child.on('close', () => reject(new Error(`exited before printing a code: ${stdout} ${stderr}`)));
  });
  const exit = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => child.on('close', (c) => resolve({ code: c ?? -1, stdout, stderr })));
  return { code, exit };
}

/** What a person does on another device: open the URL, type the code, sign in (or cancel). */
async function onTheDevicePage(h: Harness, url: string, userCode: string, choice: { user: string } | 'cancel') {
  const codePage = await h.fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ otc: userCode }).toString() });
  const form = parseForm(await codePage.text());
  if (choice === 'cancel') form.fields.action = 'cancel';
  else Object.assign(form.fields, { username: choice.user, password: 'sandbox' });
  const done = await h.fetch(new URL(form.action, url), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form.fields).toString() });
  return done.text();
}

describe('mailbox-agent signin --device', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('prints the URL and code, polls, and stores the sign-in like the browser flow; jobs run', async () => {
    const run = startDeviceSignin(h);
    const { url, userCode } = await run.code;
    assert.equal(url, `${h.sandbox.url}/devicelogin`);
    assert.match(userCode, /^[A-Z0-9]{9}$/);
    assert.match(await onTheDevicePage(h, url, userCode, { user: 'alice@contoso.test' }), /You have signed in/);
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
    const run = startDeviceSignin(h);
    const { url, userCode } = await run.code;
    await onTheDevicePage(h, url, userCode, { user: 'bob@contoso.test' });
    const { code, stderr } = await run.exit;
    assert.equal(code, 2);
    assert.match(stderr, /bob@contoso\.test signed in, but the agent already belongs to alice@contoso\.test/);
    assert.deepEqual(await h.rt.store.getSecret('auth:tokens'), before);
  });

  test('declined on the device page: exits 2 and says so', async () => {
    const run = startDeviceSignin(h);
    const { url, userCode } = await run.code;
    await onTheDevicePage(h, url, userCode, 'cancel');
    const { code, stderr } = await run.exit;
    assert.equal(code, 2);
    assert.match(stderr, /declined/);
  });
});
