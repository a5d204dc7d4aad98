import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import supertest from 'supertest';
import { startServer } from '../../src/cli/server.ts';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { createFetch } from '../../src/config/transport.ts';
import { JobLock } from '../../src/jobs/lock.ts';
import { BUSY_RETRY_MS } from '../../src/jobs/snooze-waker.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { fakeClock, type FakeClock } from '../helpers/fake-clock.ts';
import { logCapture, signIn, type Harness } from '../helpers/harness.ts';
import { freePort } from '../helpers/server.ts';

const ALICE = 'alice@contoso.test';
const MINUTE = 60_000;
// The job never fires on its own during the test: what brings a message back is the agent's timer, not a run.
const JOBS = `jobs:
  - name: later
    type: inbox-rules
    schedule: "0 0 1 1 *"
    rules:
      - name: later
        match: { subjectContains: "[later]" }
        actions: [ { markRead: true }, { snooze: 30m } ]
`;

type Agent = Awaited<ReturnType<typeof startServer>>;

describe('snooze: a snoozed message comes back at its time while the agent runs, not at the job\'s next run', () => {
  let sandbox: Sandbox;
  let config: Config;
  let url: string;
  let agent: Agent;
  let clock: FakeClock;
  let logs: string[];

  const start = async (offsetMs = 0) => {
    clock = fakeClock({ offsetMs });
    const capture = logCapture();
    logs = capture.lines;
    agent = await startServer(config, capture.log, { installSignalHandlers: false, snoozeClock: clock });
  };
  const advance = (ms: number) => clock.advance(ms, () => agent.snoozeWaker.settled());
  const run = async () => {
    const result = await agent.rt.runner.run('later');
    assert.equal(result.ok, true, result.error);
    // The end of a run re-arms the timer: let it read what the run snoozed.
    await agent.snoozeWaker.settled();
    return result;
  };
  const message = (subject: string) => {
    for (const f of sandbox.admin.folders(ALICE)) {
      const m = sandbox.admin.messages(ALICE, f.id).find((x) => x.subject === subject);
      if (m) return { ...m, in: f.wellKnownName ?? f.displayName };
    }
    assert.fail(`no message "${subject}"`);
  };
  const snooze = async (subject: string) => {
    sandbox.admin.deliver(ALICE, { subject, from: 'boss@contoso.test' });
    await run();
    assert.equal(message(subject).in, 'Snoozed');
    assert.equal(message(subject).isRead, true);
  };
  const unsnoozes = async (subject: string) => (await agent.rt.runner.recentActions({ job: 'later', limit: 500 })).filter((a) => a.action === 'unsnooze' && a.subject === subject);
  /** Moves of the message through Graph (to Snoozed, back to the Inbox), $batch sub-requests included; the agent asks for immutable ids. */
  const moves = (id: string) => sandbox.admin.graphRequests().filter((g) => g.method === 'POST' && /\/move$/.test(g.path) && decodeURIComponent(g.path).includes(id));

  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ma-snooze-'));
    sandbox = await startSandbox({ dataDir: path.join(dir, 'sandbox'), port: 0 });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    writeFileSync(path.join(dir, 'agent.config.yaml'), JOBS);
    const env = {
      DATA_DIR: dir,
      STORE_URL: `sqlite://${path.join(dir, 'agent.sqlite')}`,
      AGENT_CONFIG: path.join(dir, 'agent.config.yaml'),
      SANDBOX_PORT: new URL(sandbox.url).port,
      PORT: String(port),
      MS_REDIRECT_URI: `${url}/auth/callback`,
    };
    config = loadConfig(env, { envFile: false, cwd: dir });
    await start();
    const browser = { http: supertest.agent(url), fetch: createFetch({ origins: [sandbox.url], caPem: sandbox.caPem }), env } as unknown as Harness;
    assert.equal((await signIn(browser, ALICE)).response.status, 303);
    // The first run starts the job's sync: only mail that arrives afterwards is acted on.
    await run();
  });
  // Runs snooze by the real clock: each test starts with the agent's timer clock back on it.
  beforeEach(() => clock.rewind());
  after(async () => {
    await agent?.stop();
    await sandbox?.close();
  });

  test('snoozed for 30m: back in the Inbox, unread, once 30 minutes pass, with no run in between; the dashboard shows it', async () => {
    await snooze('[later] thirty minutes');
    const lastRun = await agent.rt.runner.lastRun('later');
    assert.equal((await agent.rt.runner.snoozed()).length, 1);

    await advance(29 * MINUTE);
    assert.equal(message('[later] thirty minutes').in, 'Snoozed', 'not before its time');
    await advance(MINUTE + 1000);
    const back = message('[later] thirty minutes');
    assert.equal(back.in, 'inbox');
    assert.equal(back.isRead, false, 'back unread');
    assert.deepEqual(await agent.rt.runner.lastRun('later'), lastRun, 'no run of the job did it');
    assert.deepEqual(await agent.rt.runner.snoozed(), []);
    assert.equal((await unsnoozes('[later] thirty minutes')).length, 1, 'in the audit log');
    const page = await supertest(url).get('/').expect(200);
    assert.doesNotMatch(page.text, /data-testid="snoozed"/, 'the snoozed list is empty');
    assert.match(page.text, /data-testid="recent-actions"[\s\S]*\[later\] thirty minutes<\/td><td>unsnooze/);
  });

  test('a run holding the job lock makes the timer wait: the message comes back once, when the job is free', async () => {
    await snooze('[later] busy job');
    const id = message('[later] busy job').immutableId;
    const held = await new JobLock(agent.rt.store).acquire('later', 'test-run');
    try {
      await advance(30 * MINUTE + 1000);
      assert.equal(message('[later] busy job').in, 'Snoozed', 'never while the job is held');
      assert.ok(clock.pending()[0]! <= BUSY_RETRY_MS, `tried again soon: ${clock.pending().join(', ')}`);
    } finally {
      await held.release();
    }
    await advance(BUSY_RETRY_MS);
    assert.equal(message('[later] busy job').in, 'inbox');
    assert.equal(message('[later] busy job').isRead, false);
    await advance(10 * MINUTE);
    assert.equal(moves(id).length, 2, 'moved to Snoozed and back, nothing more');
    assert.equal((await unsnoozes('[later] busy job')).length, 1);
  });

  test('the timer and a run at the same time never bring a message back twice', async () => {
    await snooze('[later] raced');
    const id = message('[later] raced').immutableId;
    // Due for the run too, which reads the real clock: its time moved to the past stands in for 30 minutes passing.
    const [entry] = (await agent.rt.store.get<{ until: string }[]>('job:later:snoozed'))!;
    await agent.rt.store.set('job:later:snoozed', [{ ...entry!, until: new Date(Date.now() - 1000).toISOString() }]);
    const held = await new JobLock(agent.rt.store).acquire('later', 'test-run');
    try {
      await advance(MINUTE);
      assert.equal(message('[later] raced').in, 'Snoozed', 'the timer found the job busy');
      assert.ok(clock.pending()[0]! <= BUSY_RETRY_MS, `tried again soon: ${clock.pending().join(', ')}`);
    } finally {
      await held.release();
    }
    // The job's own run brings it back; the timer, re-armed when that run ends and when it retries, finds nothing left.
    const result = await run();
    assert.ok(result.actions.some((a) => a.action === 'unsnooze' && a.subject === '[later] raced'));
    await advance(10 * MINUTE);
    assert.equal(message('[later] raced').in, 'inbox');
    assert.equal(moves(id).length, 2, 'moved to Snoozed and back, nothing more');
    assert.equal((await unsnoozes('[later] raced')).length, 1);
  });

  test('across a restart: shutdown stops the timer, and what fell due meanwhile comes back at once at start', async () => {
    await snooze('[later] restart');
    const lastRun = await agent.rt.runner.lastRun('later');
    assert.ok(clock.pending().length > 0);
    await agent.stop();
    assert.deepEqual(clock.pending(), [], 'no timer left after shutdown');
    assert.equal(message('[later] restart').in, 'Snoozed');
    // 31 minutes later the agent starts again.
    await start(31 * MINUTE);
    await agent.snoozeWaker.settled();
    assert.equal(message('[later] restart').in, 'inbox', 'back at start, with no timer or run needed');
    assert.equal(message('[later] restart').isRead, false);
    assert.deepEqual(await agent.rt.runner.lastRun('later'), lastRun, 'no run of the job did it');
    assert.equal((await unsnoozes('[later] restart')).length, 1);
    assert.ok(logs.some((l) => /snoozed messages brought back/.test(l)), logs.join('\n'));
  });
});
