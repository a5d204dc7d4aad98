import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import supertest from 'supertest';
import { buildStatus, createRuntime, type Runtime } from '../../src/cli/runtime.ts';
import { AgentError } from '../../src/config/errors.ts';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { createApp } from '../../src/web/index.ts';
import { logCapture, startHarness, type Harness } from '../helpers/harness.ts';
import { startWebhook } from './webhook.ts';

/** A job that fails while the test says so, with the test's message. */
const FLAKY_JOB = `export default {
  async run() {
    const why = globalThis.flakyJobFailure;
    if (why) throw typeof why === 'string' ? new Error(why) : why;
  },
};
`;
const control = globalThis as { flakyJobFailure?: string | Error };
const HOUR = 3_600_000;

describe('a failing job tells a person: after NOTIFY_AFTER_FAILURES runs in a row, reminders, one recovery message', () => {
  let h: Harness;
  let hook: Awaited<ReturnType<typeof startWebhook>>;
  let restarted: Runtime | undefined;
  let offset = 0;

  before(async () => {
    hook = await startWebhook();
    const dir = mkdtempSync(path.join(tmpdir(), 'ma-flaky-'));
    writeFileSync(path.join(dir, 'flaky.mjs'), FLAKY_JOB);
    h = await startHarness({
      jobsFile: `jobs:\n  - name: flaky\n    module: ${JSON.stringify(path.join(dir, 'flaky.mjs'))}\n    schedule: "0 0 1 1 *"\n`,
      env: { NOTIFY_URL: hook.url, NOTIFY_REPEAT_HOURS: '24' },
    });
  });
  after(async () => {
    await restarted?.close();
    await h.close();
    await hook.close();
  });

  /** The dashboard of a runtime, as the server builds it. */
  const dashboard = (rt: Runtime) =>
    supertest(createApp({ auth: rt.auth, runner: rt.runner, status: () => buildStatus(rt), notices: () => rt.notifier.active(), log: rt.log, redirectUri: rt.config.redirectUri }))
      .get('/')
      .expect(200)
      .then((r) => r.text);

  test('three failures in a row, across a restart, POST once with the reason and the fix; the dashboard shows it', async () => {
    control.flakyJobFailure = 'the CRM answered 500';
    for (let i = 0; i < 3; i++) assert.equal((await h.rt.runner.run('flaky', { dryRun: true })).ok, false);
    assert.equal((await h.rt.runner.run('flaky')).ok, false);
    assert.equal((await h.rt.runner.run('flaky')).ok, false);
    assert.equal(hook.received.length, 0, 'two failures (dry runs do not count) are not yet a pattern');

    // A restart: the count is in the store, not in memory.
    restarted = await createRuntime(loadConfig(h.env, { envFile: false, cwd: h.dir }), { log: logCapture().log, sandbox: 'shared', now: () => Date.now() + offset });
    assert.equal((await restarted.runner.run('flaky')).ok, false);
    assert.equal(hook.received.length, 1);
    const [message] = hook.received;
    assert.equal(message!.event, 'job-failing');
    assert.equal(message!.key, 'job:flaky');
    assert.equal(message!.reminder, false);
    assert.match(String(message!.reason), /The job "flaky" has failed 3 runs in a row\. The last one: the CRM answered 500/);
    assert.match(String(message!.remedy), /npx mailbox-agent run flaky/);

    assert.equal((await restarted.runner.run('flaky')).ok, false);
    assert.equal(hook.received.length, 1, 'a fourth failure is the same condition: no second message');
    assert.equal((await restarted.runner.lastRun('flaky'))?.failuresInARow, 4);

    const html = await dashboard(restarted);
    const banner = html.slice(html.indexOf('data-testid="attention-job-failing"'));
    assert.ok(html.includes('data-testid="attention-job-failing"'), 'the dashboard shows the failing job');
    assert.match(banner, /The job &quot;flaky&quot; has failed 4 runs in a row\. The last one: the CRM answered 500/);
    assert.match(banner, /npx mailbox-agent run flaky/);
  });

  test('a reminder every NOTIFY_REPEAT_HOURS while it keeps failing', async () => {
    offset += 23 * HOUR;
    await restarted!.notifier.tick();
    assert.equal(hook.received.length, 1, 'not due yet');
    offset += HOUR;
    await restarted!.notifier.tick();
    assert.equal(hook.received.length, 2);
    assert.equal(hook.received[1]!.event, 'job-failing');
    assert.equal(hook.received[1]!.reminder, true);
    assert.match(String(hook.received[1]!.reason), /failed 4 runs in a row/);
    await restarted!.notifier.tick();
    assert.equal(hook.received.length, 2, 'one reminder per interval');
  });

  test('one POST when it recovers, none after; the count starts again from zero', async () => {
    control.flakyJobFailure = undefined;
    assert.equal((await restarted!.runner.run('flaky')).ok, true);
    assert.equal((await restarted!.runner.run('flaky')).ok, true);
    assert.deepEqual(hook.received.map((m) => m.event), ['job-failing', 'job-failing', 'recovered']);
    assert.equal(hook.received[2]!.key, 'job:flaky');
    assert.match(String(hook.received[2]!.reason), /flaky/);
    assert.ok(!(await dashboard(restarted!)).includes('data-testid="attention-job-failing"'));

    control.flakyJobFailure = 'again';
    await restarted!.runner.run('flaky');
    offset += 48 * HOUR;
    await restarted!.notifier.tick();
    assert.equal(hook.received.length, 3, 'one failure after a success is not three in a row');
    control.flakyJobFailure = undefined;
  });

  test("a run stopped by a shutdown does not count; the fix is the error's own remedy when it has one", async () => {
    const rt = restarted!;
    await rt.runner.run('flaky');
    const before = hook.received.length;
    control.flakyJobFailure = 'the CRM answered 500';
    await rt.runner.run('flaky');
    await rt.runner.run('flaky');
    control.flakyJobFailure = new AgentError('SHUTTING_DOWN', 'Stopped between two pages because the agent is shutting down.', { remedy: 'Nothing to do: the next run continues where this one stopped.' });
    await rt.runner.run('flaky');
    await rt.runner.run('flaky');
    assert.equal((await rt.runner.lastRun('flaky'))?.failuresInARow, 2);
    assert.equal(hook.received.length, before);
    control.flakyJobFailure = new AgentError('GRAPH_ERROR', 'Microsoft Graph refused to list the folder (403).', { remedy: 'Grant Mail.ReadWrite to the app and sign in again.' });
    await rt.runner.run('flaky');
    assert.equal(hook.received.length, before + 1);
    const message = hook.received.at(-1)!;
    assert.match(String(message.reason), /failed 3 runs in a row\. The last one: Microsoft Graph refused to list the folder \(403\)\.$/);
    assert.match(String(message.remedy), /^Grant Mail\.ReadWrite to the app and sign in again\. The job keeps running on its schedule/);
    control.flakyJobFailure = undefined;
    await rt.runner.run('flaky');
  });

  test('a failing job taken out of the jobs file is settled at start with one message, not reminded of forever', async () => {
    const rt = restarted!;
    control.flakyJobFailure = 'the CRM answered 500';
    for (let i = 0; i < 3; i++) await rt.runner.run('flaky');
    control.flakyJobFailure = undefined;
    assert.equal(hook.received.at(-1)!.event, 'job-failing');
    const before = hook.received.length;

    const otherJobs = path.join(h.dir, 'other.yaml');
    writeFileSync(otherJobs, `jobs:\n  - name: other\n    module: ${JSON.stringify(path.join(h.dir, 'other.mjs'))}\n    schedule: "0 0 1 1 *"\n`);
    writeFileSync(path.join(h.dir, 'other.mjs'), 'export default { async run() {} };\n');
    const edited = await createRuntime(loadConfig({ ...h.env, AGENT_CONFIG: otherJobs }, { envFile: false, cwd: h.dir }), { log: logCapture().log, sandbox: 'shared', now: () => Date.now() + offset });
    try {
      await edited.runner.settleRemovedJobs();
      await edited.runner.settleRemovedJobs();
      assert.equal(hook.received.length, before + 1);
      assert.equal(hook.received.at(-1)!.event, 'recovered');
      assert.equal(hook.received.at(-1)!.key, 'job:flaky');
      assert.match(String(hook.received.at(-1)!.reason), /The job "flaky" is no longer in .*other\.yaml/);
      assert.deepEqual(await edited.notifier.active(), []);
    } finally {
      await edited.close();
    }
  });
});

test('NOTIFY_AFTER_FAILURES: default 3, a whole number of 1 or more, a bad value named with its fix', () => {
  assert.equal(loadConfig({}, { envFile: false }).notifyAfterFailures, 3);
  assert.equal(loadConfig({ NOTIFY_AFTER_FAILURES: '1' }, { envFile: false }).notifyAfterFailures, 1);
  for (const bad of ['0', 'three', '2.5']) {
    assert.throws(() => loadConfig({ NOTIFY_AFTER_FAILURES: bad }, { envFile: false }), (error: unknown) => error instanceof ConfigError && /NOTIFY_AFTER_FAILURES: must be/.test(error.message));
  }
});
