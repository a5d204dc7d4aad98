import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MSA_TENANT_ID } from '../../src/sandbox/directory.ts';
import { cli, onTheDevicePage, startDeviceSignin } from '../helpers/cli.ts';
import { REPO, signIn, startHarness, type Harness } from '../helpers/harness.ts';

const CAROL = 'carol@outlook.test';

/**
 * Issue 11 item 5: a personal Microsoft account (Outlook.com) with MS_TENANT=consumers. Its access tokens are not
 * JWTs and Graph refuses its mailboxSettings with 403, so the digest falls back to the jobs file's timezone, else
 * UTC, with a warning, instead of failing.
 */
describe('a personal Microsoft account (MS_TENANT=consumers)', () => {
  let h: Harness;
  const jobsWithoutZone = readFileSync(path.join(REPO, 'agent.config.yaml'), 'utf8');
  before(async () => {
    h = await startHarness({ env: { MS_TENANT: 'consumers' }, jobsFile: jobsWithoutZone });
    const { response } = await signIn(h, CAROL);
    assert.equal(response.status, 303, response.text);
  });
  after(() => h.close());

  test('signs in under the personal-accounts tenant; the access token is opaque', async () => {
    const status = await h.rt.auth.status();
    assert.equal(status.state, 'ready');
    assert.equal(status.account?.upn, CAROL);
    assert.equal(status.account?.tid, MSA_TENANT_ID);
    const tokens = await h.rt.store.getSecret<{ accessToken: string }>('auth:tokens');
    assert.ok(tokens && !tokens.accessToken.includes('.'), 'the sandbox gave a personal account a token that is not a JWT');
    const authorize = h.sandbox.admin.tokenRequests().filter((t) => t.upn === CAROL);
    assert.ok(authorize.length >= 1);
  });

  test('signin --device works for the personal account too (the device code is asked for under /consumers)', async () => {
    const run = startDeviceSignin(h.env, h.dir);
    const { url, userCode } = await run.code;
    assert.match(await onTheDevicePage(h.fetch, url, userCode, { user: CAROL }), /You have signed in/);
    const { code, stdout, stderr } = await run.exit;
    assert.equal(code, 0, stderr);
    assert.match(stdout, new RegExp(`Signed in as ${CAROL} \\(tenant ${MSA_TENANT_ID}\\)`));
  });

  test('triage runs through the installed binary', async () => {
    const r = await cli(['run', 'triage', '--json'], h.env, h.dir);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const result = JSON.parse(r.stdout) as { ok: boolean; examined: number };
    assert.equal(result.ok, true);
    assert.ok(result.examined > 0);
  });

  test('agenda: mailboxSettings is refused (403), so the digest is in UTC with a warning, and is sent', async () => {
    const r = await cli(['run', 'agenda', '--json'], h.env, h.dir);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const result = JSON.parse(r.stdout) as { ok: boolean; actions: { action: string; result: string }[] };
    assert.equal(result.ok, true, r.stdout);
    assert.deepEqual(result.actions.map((a) => [a.action, a.result]), [['sendDigest', 'done']]);
    assert.match(r.stderr, /refused the mailbox's settings \(mailboxSettings, 403.*dates are in UTC/);
    assert.match(r.stderr, /timezone:/);
    const refused = h.sandbox.admin.graphRequests().filter((g) => /mailboxSettings/.test(g.path) && g.upn === CAROL);
    assert.equal(refused.at(-1)?.status, 403, 'the sandbox refused it for real');
    const digest = h.sandbox.admin.messages(CAROL, 'inbox').find((m) => /^Agenda for /.test(m.subject));
    assert.ok(digest, 'the digest arrived in her own inbox');
    assert.match(digest.bodyPreview, /Times in UTC/);
  });

  test('a calendar rule on working hours: refused mailboxSettings is named with the fix; with its own workingHours it runs', async () => {
    const file = path.join(h.dir, 'hours.yaml');
    const job = (own: string) => `timezone: Europe/London
jobs:
  - name: hours
    type: calendar-rules
    schedule: "*/10 * * * *"${own}
    rules:
      - name: after-hours
        match: { outsideWorkingHours: true }
        actions: [ { categorize: [After hours] } ]
`;
    (await import('node:fs')).writeFileSync(file, job(''));
    const refused = await cli(['run', 'hours', '--dry-run', '--json'], { ...h.env, AGENT_CONFIG: file }, h.dir);
    assert.notEqual(refused.code, 0);
    const error = (JSON.parse(refused.stdout) as { error: string }).error;
    assert.match(error, /refused the mailbox's working hours \(mailboxSettings, 403/);
    assert.match(error, /workingHours: \{ start: "08:00", end: "18:00" \} under the job hours/);
    (await import('node:fs')).writeFileSync(file, job('\n    workingHours: { start: "08:00", end: "18:00" }'));
    const ran = await cli(['run', 'hours', '--dry-run', '--json'], { ...h.env, AGENT_CONFIG: file }, h.dir);
    assert.equal(ran.code, 0, ran.stdout + ran.stderr);
    assert.equal((JSON.parse(ran.stdout) as { ok: boolean }).ok, true);
  });

  test("agenda: with the jobs file's timezone, no mailboxSettings request and no warning", async () => {
    const zoned = path.join(h.dir, 'zoned.yaml');
    (await import('node:fs')).writeFileSync(zoned, `timezone: Europe/London\n${jobsWithoutZone}`);
    const before = h.sandbox.admin.graphRequests().length;
    const r = await cli(['run', 'agenda', '--json'], { ...h.env, AGENT_CONFIG: zoned }, h.dir);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stderr, /mailboxSettings/);
    assert.equal(h.sandbox.admin.graphRequests().slice(before).filter((g) => /mailboxSettings/.test(g.path)).length, 0);
    const digest = h.sandbox.admin.messages(CAROL, 'inbox').find((m) => /^Agenda for /.test(m.subject) && /Europe\/London/.test(m.bodyPreview));
    assert.ok(digest, 'the digest says Europe/London');
  });
});
