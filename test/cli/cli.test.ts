import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cli } from '../helpers/cli.ts';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

describe('the mailbox-agent binary', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('usage errors exit 64', async () => {
    const unknown = await cli(['frobnicate'], h.env, h.dir);
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr, /Unknown command "frobnicate"/);
    const badFlag = await cli(['run', 'triage', '--dryrun'], h.env, h.dir);
    assert.equal(badFlag.code, 64);
    const help = await cli(['--help'], h.env, h.dir);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /run <job> \[--dry-run\] \[--json\]/);
  });

  test('signed out: status --json says so and run exits 2 with the reason in one line', async () => {
    const status = await cli(['status', '--json'], h.env, h.dir);
    assert.equal(status.code, 2);
    const json = JSON.parse(status.stdout);
    assert.equal(json.state, 'signed-out');
    assert.equal(json.account, null);
    assert.equal(json.jobs[0].name, 'triage');
    assert.ok(json.jobs[0].nextRun);
    const run = await cli(['run', 'triage'], h.env, h.dir);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^mailbox-agent: triage failed: Nobody is signed in\. Sign in: http:\/\/127\.0\.0\.1:3000\/auth\/signin\n$/m);
  });

  test('after a sign-in, run --json prints the summary and exits 0; the mailbox changed', async () => {
    await signIn(h);
    const dry = await cli(['run', 'triage', '--dry-run', '--json'], h.env, h.dir);
    assert.equal(dry.code, 0, dry.stderr);
    const planned = JSON.parse(dry.stdout);
    assert.equal(planned.dryRun, true);
    assert.ok(planned.actions.length > 0);
    assert.ok(planned.actions.every((a: { result: string }) => a.result === 'planned'));

    const run = await cli(['run', 'triage', '--json'], h.env, h.dir);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.deepEqual(Object.keys(result).slice(0, 6), ['job', 'ok', 'dryRun', 'examined', 'actions', 'graphRequests']);
    assert.equal(result.ok, true);
    assert.equal(result.actions.length, planned.actions.length, 'the dry run planned exactly what the run did');
    for (const a of result.actions) {
      assert.ok(a.messageId && a.rule && a.action);
      assert.equal(a.result, 'done');
    }
    const folder = h.sandbox.admin.folders('alice@contoso.test').find((f) => f.displayName === 'Newsletters')!;
    assert.ok(h.sandbox.admin.messages('alice@contoso.test', folder.id).length > 0);

    const status = await cli(['status', '--json'], h.env, h.dir);
    assert.equal(status.code, 0);
    const json = JSON.parse(status.stdout);
    assert.equal(json.state, 'ready');
    assert.deepEqual(json.account, { upn: 'alice@contoso.test', oid: h.sandbox.users[0]!.oid, tid: h.sandbox.tenantId });
    assert.equal(json.jobs[0].lastResult.ok, true);
    assert.ok(json.accessTokenExpiresAt);
  });

  test('a bad jobs file is refused with every problem, line and key', async () => {
    const bad = path.join(h.dir, 'bad.yaml');
    writeFileSync(bad, 'jobs:\n  - name: triage\n    type: inbox-rules\n    schedule: "every minute"\n    rules:\n      - name: r\n        match: { subjectContain: x }\n        actions: [ { moveTo: Archive } ]\n');
    const run = await cli(['run', 'triage'], { ...h.env, AGENT_CONFIG: bad }, h.dir);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /bad\.yaml:4 jobs\[0\]\.schedule/);
    assert.match(run.stderr, /bad\.yaml:7 jobs\[0\]\.rules\[0\]\.match\.subjectContain.*subjectContains/);
  });

  test('a broken .env is refused with the line and the fix', async () => {
    writeFileSync(path.join(h.dir, '.env'), 'PORT=80 80\nMS_CLIENT_ID 123\n');
    try {
      const run = await cli(['status'], h.env, h.dir);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /MS_CLIENT_ID 123: is not KEY=VALUE.* \[\.env line 2\]/);
    } finally {
      writeFileSync(path.join(h.dir, '.env'), '');
    }
  });

  test('signout erases the tokens and says how to revoke consent', async () => {
    const out = await cli(['signout'], h.env, h.dir);
    assert.equal(out.code, 0);
    assert.match(out.stdout, /Signed out alice@contoso\.test/);
    assert.match(out.stdout, /myapps\.microsoft\.com/);
    assert.equal(await h.rt.store.get('auth:tokens'), undefined);
  });
});
