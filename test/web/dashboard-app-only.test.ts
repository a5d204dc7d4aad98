import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import supertest from 'supertest';
import { buildStatus, createRuntime } from '../../src/cli/runtime.ts';
import { loadConfig } from '../../src/config/index.ts';
import { SANDBOX_CLIENT_SECRET, SANDBOX_CONFIDENTIAL_CLIENT_ID, SANDBOX_TENANT_ID } from '../../src/sandbox/index.ts';
import { createApp } from '../../src/web/index.ts';
import { logCapture, startHarness, type Harness } from '../helpers/harness.ts';

const APP = SANDBOX_CONFIDENTIAL_CLIENT_ID;

describe('the dashboard in app-only mode', () => {
  let h: Harness;
  let http: supertest.Agent;

  before(async () => {
    h = await startHarness();
    await h.rt.close();
    h.env = {
      ...h.env,
      AUTH_MODE: 'app-only', MS_CLIENT_ID: APP, MS_CLIENT_SECRET: SANDBOX_CLIENT_SECRET, MS_TENANT: SANDBOX_TENANT_ID,
      MS_AUTHORITY_HOST: h.sandbox.url, MS_GRAPH_URL: h.sandbox.url, MAILBOX: 'alice@contoso.test', CANARY_MAILBOX: 'bob@contoso.test',
    };
    h.rt = await createRuntime(loadConfig(h.env, { envFile: false, cwd: h.dir }), { log: logCapture().log, sandbox: 'shared' });
    const rt = h.rt;
    http = supertest.agent(createApp({ auth: rt.auth, runner: rt.runner, status: () => buildStatus(rt), log: rt.log, redirectUri: rt.config.redirectUri, appOnly: true }));
  });
  after(() => h.close());

  test('unconfined: a banner says no job runs, with the PowerShell that fixes it; nothing offers a sign-in', async () => {
    h.sandbox.admin.setAccessPolicy(APP, null);
    await h.rt.appOnly!.guard.prove().catch(() => undefined);
    const html = (await http.get('/').expect(200)).text;
    assert.match(html, /data-testid="attention-confinement"/);
    assert.match(html, /The app can read other mailboxes: no job runs/);
    assert.match(html, /New-ApplicationAccessPolicy|New-ManagementRoleAssignment/);
    assert.doesNotMatch(html, /href="\/auth\/signin"/);
    assert.match(html, /data-testid="account-upn">alice@contoso\.test</);
    assert.match(html, new RegExp(`<code>${APP}</code>`));
    const signin = await http.get('/auth/signin').set('Accept', 'application/json').expect(400);
    assert.match(signin.body.error.message, /runs app-only/);
  });

  test('confined: no banner, and the confinement pill says so', async () => {
    h.sandbox.admin.setAccessPolicy(APP, ['alice@contoso.test']);
    await h.rt.store.delete('confinement:proof');
    (h.rt.appOnly!.guard as unknown as { memo?: unknown }).memo = undefined;
    await h.rt.appOnly!.guard.prove();
    const html = (await http.get('/').expect(200)).text;
    assert.doesNotMatch(html, /data-testid="attention/);
    assert.match(html, /data-testid="confinement-state">confined</);
  });
});
