import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createRuntime } from '../../src/cli/runtime.ts';
import { buildStatus } from '../../src/cli/runtime.ts';
import { loadConfig } from '../../src/config/index.ts';
import { SANDBOX_CONFIDENTIAL_CLIENT_ID, SANDBOX_TENANT_ID } from '../../src/sandbox/index.ts';
import { cli } from '../helpers/cli.ts';
import { logCapture, startHarness, type Harness } from '../helpers/harness.ts';

/**
 * App-only end to end on the sandbox: a certificate made by the real `mailbox-agent cert create`, registered on the
 * sandbox's confidential app, msal-node client credentials with it, the confinement proof, and a job run.
 */

const ALICE = 'alice@contoso.test';
const BOB = 'bob@contoso.test';
const APP = SANDBOX_CONFIDENTIAL_CLIENT_ID;

const CUSTOM_JOB = `export default {
  async run(ctx) {
    const target = ctx.job === 'snoop-me' ? '/me/messages' : '/users/${BOB}/messages?$top=1';
    await ctx.graph.get(target);
  },
};
`;

describe('app-only mode on the sandbox', () => {
  let certDir: string;
  let h: Harness;
  let hooks: { body: Record<string, unknown> }[];
  let hookServer: Server;
  let hookUrl: string;

  before(async () => {
    certDir = mkdtempSync(path.join(tmpdir(), 'ma-cert-'));
    // The real CLI, as a user would make the credential (RSA 3072 by default).
    const made = await cli(['cert', 'create', '--out', certDir, '--json'], {}, certDir);
    assert.equal(made.code, 0, made.stderr);
    hooks = [];
    hookServer = createServer((req, res) => {
      let text = '';
      req.on('data', (d) => (text += d));
      req.on('end', () => {
        hooks.push({ body: JSON.parse(text) as Record<string, unknown> });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
    hookUrl = `http://127.0.0.1:${(hookServer.address() as { port: number }).port}/hook`;
    const jobsDir = mkdtempSync(path.join(tmpdir(), 'ma-jobs-'));
    writeFileSync(path.join(jobsDir, 'snoop.mjs'), CUSTOM_JOB);
    const sample = readFileSync(path.resolve('agent.config.yaml'), 'utf8');
    const jobsFile = `${sample.trimEnd()}\n  - name: snoop\n    module: ${path.join(jobsDir, 'snoop.mjs')}\n    schedule: "0 * * * *"\n  - name: snoop-me\n    module: ${path.join(jobsDir, 'snoop.mjs')}\n    schedule: "0 * * * *"\n`;
    h = await startHarness({ jobsFile, env: {} });
    // Re-wire the harness runtime as app-only against its own sandbox.
    await h.rt.close();
    h.env = { ...h.env, ...appOnlyEnv(h, certDir, { NOTIFY_URL: hookUrl }) };
    h.rt = await createRuntime(loadConfig(h.env, { envFile: false, cwd: h.dir }), { log: logCapture().log, sandbox: 'shared' });
    const keyCredentials = JSON.parse(readFileSync(path.join(certDir, 'keyCredentials.json'), 'utf8')) as unknown;
    // Registered over the sandbox's HTTP admin API, as a test in another process would.
    const registered = await h.fetch(`${h.sandbox.url}/_sandbox/apps/${APP}/certificates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(keyCredentials) });
    assert.equal(registered.status, 201);
  });
  after(async () => {
    await h.close();
    await new Promise<void>((resolve) => hookServer.close(() => resolve()));
  });
  beforeEach(async () => {
    h.sandbox.admin.setAccessPolicy(APP, null);
    h.sandbox.admin.setRbacScope(APP, null);
    h.sandbox.admin.setGrantedRoles(APP, null);
    // A token cached by an earlier test may carry other roles.
    await h.rt.appOnly!.auth.getAccessToken({ forceRefresh: true });
    await h.rt.store.delete('confinement:proof');
    (h.rt.appOnly!.guard as unknown as { memo?: unknown }).memo = undefined;
    h.sandbox.admin.clearLogs();
    hooks.length = 0;
  });

  test('confined by an access policy: the job runs on MAILBOX with a certificate assertion, and nothing leaves for another host', async () => {
    h.sandbox.admin.setAccessPolicy(APP, [ALICE]);
    await h.rt.appOnly!.auth.signout();
    const result = await h.rt.runner.run('triage');
    assert.equal(result.ok, true, result.error);
    assert.ok(result.actions.length > 0, 'the sample rules act on the seeded inbox');
    const tokenRequests = h.sandbox.admin.tokenRequests();
    assert.ok(tokenRequests.length >= 1);
    assert.ok(tokenRequests.every((t) => t.grantType === 'client_credentials' && t.status === 200 && t.clientId === APP));
    const graph = h.sandbox.admin.graphRequests();
    const toBob = graph.filter((g) => g.path.includes(encodeURIComponent(BOB)) || g.path.includes(BOB));
    assert.deepEqual(toBob.map((g) => [g.method, g.status]), [['GET', 403]], 'only the canary probe touches the other mailbox, and it is denied');
    const others = graph.filter((g) => !toBob.includes(g)).map((g) => g.path);
    assert.deepEqual(others.filter((p) => !p.startsWith(`/v1.0/users/${encodeURIComponent(ALICE)}/`) && p !== '/v1.0/$batch'), []);
    assert.deepEqual([...h.rt.appOnly!.auth.hostsContacted], [new URL(h.sandbox.url).host]);
    const status = await buildStatus(h.rt);
    assert.equal(status.mode, 'app-only');
    assert.equal(status.state, 'ready');
    // The service principal's oid is only in the access token, which is opaque to the agent.
    assert.deepEqual(status.account, { upn: ALICE, oid: '', tid: SANDBOX_TENANT_ID });
    assert.equal(status.confinement?.state, 'confined');
    assert.equal((status.confinement as { mechanism?: string }).mechanism, 'application-access-policy');
    assert.equal(status.app?.credential.kind, 'certificate');
    assert.equal(hooks.length, 0);
  });

  test('the app token is cached until near expiry, in our store and encrypted', async () => {
    h.sandbox.admin.setAccessPolicy(APP, [ALICE]);
    const auth = h.rt.appOnly!.auth;
    const first = await auth.getAccessToken();
    h.sandbox.admin.clearLogs();
    assert.equal(await auth.getAccessToken(), first);
    assert.equal(h.sandbox.admin.tokenRequests().length, 0, 'a second call is served from the cache');
    const raw = JSON.stringify(await h.rt.store.get('app-only:msal-cache'));
    assert.ok(raw && !raw.includes(first.slice(0, 40)), 'the cache is sealed at rest');
    assert.notEqual(await auth.getAccessToken({ forceRefresh: true }), undefined);
    assert.equal(h.sandbox.admin.tokenRequests().length, 1, 'forceRefresh goes to the token endpoint');
  });

  test('the canary is readable: no job runs, NOTIFY_URL is told, status shows the PowerShell that fixes it', async () => {
    const result = await h.rt.runner.run('triage');
    assert.equal(result.ok, false);
    assert.equal(result.errorCode, 'UNCONFINED');
    assert.match(result.error!, /can read CANARY_MAILBOX bob@contoso\.test/);
    assert.equal(result.graphRequests, 0);
    const touchedAlice = h.sandbox.admin.graphRequests().filter((g) => g.upn === ALICE && !g.path.includes('/mailFolders/inbox?$select=id'));
    assert.deepEqual(touchedAlice, [], 'beyond the probe, nothing touched the mailbox');
    await waitFor(() => hooks.length > 0);
    assert.equal(hooks[0]!.body.event, 'confinement-broken');
    assert.match(String(hooks[0]!.body.remedy), /New-ApplicationAccessPolicy -AppId 5a4db0c5/);
    const status = await buildStatus(h.rt);
    assert.equal(status.confinement?.state, 'unconfined');
    assert.match(String((status.confinement as { fix?: string }).fix), /New-ManagementRoleAssignment -App .* -Role "Application Mail.ReadWrite"/);
    assert.match(String(status.reason), /not confined/);
  });

  test('a policy still propagating is not trusted; once enforced, the next run acts', async () => {
    h.sandbox.admin.setAccessPolicy(APP, [ALICE], 'propagating');
    const before = await h.rt.runner.run('triage', { dryRun: true });
    assert.equal(before.errorCode, 'UNCONFINED');
    h.sandbox.admin.setAccessPolicy(APP, [ALICE], 'on');
    const afterwards = await h.rt.runner.run('triage', { dryRun: true });
    assert.equal(afterwards.ok, true, afterwards.error);
  });

  test('RBAC for Applications confines only once the unscoped Entra permission is removed', async () => {
    h.sandbox.admin.setRbacScope(APP, { mailboxes: [ALICE], roles: ['Mail.ReadWrite', 'MailboxSettings.Read'] });
    const withEntraGrant = await h.rt.appOnly!.guard.prove();
    assert.equal(withEntraGrant.state, 'unconfined');
    h.sandbox.admin.setGrantedRoles(APP, []);
    await h.rt.appOnly!.auth.getAccessToken({ forceRefresh: true });
    const scoped = await h.rt.appOnly!.guard.prove();
    assert.equal(scoped.state, 'confined', scoped.reason);
    assert.equal(scoped.mechanism, 'rbac-for-applications');
    assert.equal(scoped.canaryProbe?.code, 'ExtensionError');
    const result = await h.rt.runner.run('triage', { dryRun: true });
    assert.equal(result.ok, true, result.error);
    await h.rt.appOnly!.auth.getAccessToken({ forceRefresh: true });
  });

  test('MAILBOX itself denied: says the policy excludes it or has not propagated', async () => {
    h.sandbox.admin.setAccessPolicy(APP, [BOB]);
    const result = await h.rt.runner.run('triage', { dryRun: true });
    assert.equal(result.errorCode, 'CONFINEMENT_UNPROVEN');
    assert.match(result.error!, /excludes the agent's own mailbox, has not propagated yet \(it can take hours\)/);
  });

  test('the Graph client refuses any other mailbox, whatever a custom job asks', async () => {
    h.sandbox.admin.setAccessPolicy(APP, [ALICE]);
    for (const job of ['snoop', 'snoop-me']) {
      const result = await h.rt.runner.run(job);
      assert.equal(result.ok, false);
      assert.equal(result.errorCode, 'MAILBOX_REFUSED');
    }
    const bobMessages = h.sandbox.admin.graphRequests().filter((g) => g.upn === BOB && g.path.includes('/messages'));
    assert.deepEqual(bobMessages, []);
    await assert.rejects(h.rt.graph.post('/$batch', { requests: [{ id: '1', method: 'GET', url: `/users/${BOB}/messages` }] }), { code: 'MAILBOX_REFUSED' });
  });

  test('ALLOW_UNCONFINED=true runs unconfined, warning on every run', async () => {
    const { lines, log } = logCapture();
    const rt = await createRuntime(loadConfig({ ...h.env, ALLOW_UNCONFINED: 'true' }, { envFile: false, cwd: h.dir }), { log, sandbox: 'shared' });
    try {
      for (let i = 0; i < 2; i++) {
        const result = await rt.runner.run('triage', { dryRun: true });
        assert.equal(result.ok, true, result.error);
      }
      const warnings = lines.filter((l) => /"level":"warn"/.test(l) && /UNCONFINED: this app can read bob@contoso\.test/.test(l));
      assert.equal(warnings.length, 2);
      const status = await buildStatus(rt);
      assert.match(String(status.warnings?.join(' ')), /ALLOW_UNCONFINED=true/);
    } finally {
      await rt.close();
    }
  });

  test('a certificate the app does not know is refused with AADSTS700027, named as a config problem', async () => {
    h.sandbox.admin.setAccessPolicy(APP, [ALICE]);
    h.sandbox.admin.removeCertificates(APP);
    try {
      const rt = await createRuntime(loadConfig(h.env, { envFile: false, cwd: h.dir }), { log: logCapture().log, sandbox: 'shared' });
      try {
        await rt.appOnly!.auth.signout();
        await assert.rejects(rt.appOnly!.auth.getAccessToken(), (e: { code?: string; message: string; remedy?: string }) => {
          assert.equal(e.code, 'AUTH_CONFIG');
          assert.match(e.message, /not registered on the app \(AADSTS700027\)/);
          assert.match(String(e.remedy), /Upload MS_CLIENT_CERT/);
          return true;
        });
      } finally {
        await rt.close();
      }
    } finally {
      h.sandbox.admin.registerCertificate(APP, { pem: readFileSync(path.join(certDir, 'cert.pem'), 'utf8') });
    }
  });

  test('doctor: credential, token, a fresh confinement proof, least privilege, and the tenant GUID from a domain', async () => {
    const env = { ...h.env, MS_TENANT: 'contoso.test' };
    const unconfined = await cli(['doctor'], env, h.dir);
    assert.equal(unconfined.code, 2, unconfined.stdout + unconfined.stderr);
    assert.match(unconfined.stdout, /✗ confinement: unconfined: The app can read CANARY_MAILBOX bob@contoso\.test/);
    assert.match(unconfined.stdout, /New-ApplicationAccessPolicy -AppId 5a4db0c5-a9e7-4b1c-8d2f-3e6a7b8c9d02/);
    h.sandbox.admin.setAccessPolicy(APP, [ALICE]);
    const confined = await cli(['doctor'], env, h.dir);
    assert.equal(confined.code, 0, confined.stdout + confined.stderr);
    assert.match(confined.stdout, /✓ tenant: MS_TENANT contoso\.test is tenant c0de5a4d-b0c5-4e1a-8f3e-2d7b9a6c4e10/);
    assert.match(confined.stdout, /✓ credential: certificate SHA-1 [0-9A-F]{40}/);
    assert.match(confined.stdout, /✓ confinement: confined: Reading alice@contoso\.test works and reading bob@contoso\.test is denied/);
    assert.match(confined.stdout, /! permissions: the jobs need application Mail\.ReadWrite, Mail\.Send, Calendars\.Read, MailboxSettings\.Read: .*Mail\.Send \(agenda mails the digest to me\).*; which permissions the app holds cannot be verified from the token \(access tokens are opaque\), but reading alice@contoso\.test worked/);
    assert.doesNotMatch(confined.stdout, /✗ permissions/);
  });

  test('the CLI: run exits 2 with the reason when unconfined, status --json shows the confinement', async () => {
    const run = await cli(['run', 'triage', '--dry-run'], h.env, h.dir);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /not confined/);
    h.sandbox.admin.setAccessPolicy(APP, [ALICE]);
    const status = await cli(['status', '--json'], h.env, h.dir);
    assert.equal(status.code, 0, status.stderr);
    const json = JSON.parse(status.stdout) as { mode: string; confinement: { state: string } };
    assert.equal(json.mode, 'app-only');
    assert.equal(json.confinement.state, 'confined');
  });
});

function appOnlyEnv(h: Harness, certDir: string, extra: Record<string, string>): Record<string, string> {
  return {
    AUTH_MODE: 'app-only',
    MS_CLIENT_ID: APP,
    MS_TENANT: SANDBOX_TENANT_ID,
    MS_AUTHORITY_HOST: h.sandbox.url,
    MS_GRAPH_URL: h.sandbox.url,
    MS_CLIENT_CERT: path.join(certDir, 'cert.pem'),
    MS_CLIENT_KEY: path.join(certDir, 'key.pem'),
    MAILBOX: ALICE,
    CANARY_MAILBOX: BOB,
    ...extra,
  };
}

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), 'condition not reached');
}
