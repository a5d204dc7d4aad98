import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, mock, test } from 'node:test';
import type { GraphClient } from '../../src/graph/client.ts';
import { GraphError } from '../../src/graph/graph-error.ts';
import type { SnoozedMessage } from '../../src/jobs/rules/actions/snooze.ts';
import { AuditLog } from '../../src/jobs/audit.ts';
import { BUSY_RETRY_MS, FAILURE_RETRY_MS, RECHECK_MS, RUN_SOON_MS, SnoozeWaker, WAKE_BATCH, WAKE_PAUSE_MS } from '../../src/jobs/snooze-waker.ts';
import { JobLock } from '../../src/jobs/lock.ts';
import { memoryStore, type Store } from '../../src/store/index.ts';
import { fakeClock } from '../helpers/fake-clock.ts';
import { logCapture } from '../helpers/harness.ts';

const MINUTE = 60_000;
const DAY = 86_400_000;

/** Graph as the waker's Mailbox sees it: the Inbox, moves and PATCHes, each recorded; `fail` may refuse a call, `hold` keeps moves waiting. */
function fakeGraph(options: { fail?: (method: string, path: string) => number | undefined; hold?: { reached: () => void; released: Promise<void> } } = {}) {
  const calls: string[] = [];
  const answer = async (method: string, path: string, body?: unknown) => {
    if (options.hold && /\/move$/.test(path)) {
      options.hold.reached();
      await options.hold.released;
    }
    calls.push(`${method} ${path}${body ? ` ${JSON.stringify(body)}` : ''}`);
    const status = options.fail?.(method, path);
    if (status) throw new GraphError({ status, code: status === 404 ? 'ErrorItemNotFound' : 'ServiceUnavailable', message: 'no', method, path });
    return { body: path.endsWith('/mailFolders/inbox') ? { id: 'inbox-id', displayName: 'Inbox' } : { id: path.split('/')[3] } };
  };
  const graph = {
    scoped: () => graph,
    get: (path: string) => answer('GET', path),
    post: (path: string, body: unknown) => answer('POST', path, body),
    patch: (path: string, body: unknown) => answer('PATCH', path, body),
  };
  return { graph: graph as unknown as GraphClient, calls, moves: () => calls.filter((c) => /\/move /.test(c)) };
}

function setUp(options: { gate?: () => Promise<string | undefined>; graph?: ReturnType<typeof fakeGraph>; jobs?: string[]; nextRun?: (job: string) => Date | null } = {}) {
  const store = memoryStore(randomBytes(32));
  const clock = fakeClock({ frozen: true });
  const { lines, log } = logCapture();
  const g = options.graph ?? fakeGraph();
  const waker = new SnoozeWaker({ jobs: options.jobs ?? ['later'], store, graph: g.graph, mailboxRoot: '/me', log, gate: options.gate, nextRun: options.nextRun, clock });
  const snooze = (entries: { id: string; inMs: number }[], job = 'later') =>
    store.set<SnoozedMessage[]>(`job:${job}:snoozed`, entries.map((e) => ({ id: e.id, subject: `subject ${e.id}`, until: new Date(clock.now() + e.inMs).toISOString() })));
  const left = async (job = 'later') => ((await store.get<SnoozedMessage[]>(`job:${job}:snoozed`)) ?? []).map((s) => s.id);
  const advance = (ms: number) => clock.advance(ms, () => waker.settled());
  return { store, clock, lines, waker, snooze, left, advance, ...g };
}

describe('SnoozeWaker: snoozed messages come back at their time while the server runs', () => {
  test('one timer for the soonest due message, capped at RECHECK_MS; each comes back, unread, at its own time', async () => {
    const t = setUp();
    await t.snooze([{ id: 'm2', inMs: 2 * DAY }, { id: 'm1', inMs: 5 * MINUTE }, { id: 'far', inMs: 40 * DAY }]);
    t.waker.start();
    await t.waker.settled();
    assert.deepEqual(t.clock.pending().length, 1, 'one timer');
    assert.ok(t.clock.pending()[0]! <= RECHECK_MS, 'never beyond RECHECK_MS (nor setTimeout\'s ~24.8-day limit)');
    await t.advance(5 * MINUTE - 1000);
    assert.deepEqual(t.moves(), []);
    await t.advance(1000);
    assert.deepEqual(t.calls, ['GET /me/mailFolders/inbox', 'POST /me/messages/m1/move {"destinationId":"inbox-id"}', 'PATCH /me/messages/m1 {"isRead":false}']);
    assert.deepEqual(await t.left(), ['m2', 'far']);
    await t.advance(2 * DAY);
    assert.deepEqual(await t.left(), ['far']);
    const audit = await new AuditLog(t.store, () => ['later']).recent();
    assert.deepEqual(audit.map((a) => [a.messageId, a.rule, a.action, a.result, a.subject]), [['m2', '(snoozed)', 'unsnooze', 'done', 'subject m2'], ['m1', '(snoozed)', 'unsnooze', 'done', 'subject m1']]);
    assert.equal(t.lines.filter((l) => /snoozed messages brought back/.test(l)).length, 2);
    await t.waker.stop();
  });

  test('with no clock given it keeps a timer of the process (node:test mock timers stand in for the minutes)', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.parse('2026-12-07T07:55:00Z') });
    try {
      const store = memoryStore(randomBytes(32));
      const g = fakeGraph();
      const waker = new SnoozeWaker({ jobs: ['later'], store, graph: g.graph, mailboxRoot: '/me', log: logCapture().log });
      await store.set<SnoozedMessage[]>('job:later:snoozed', [{ id: 'monday', subject: 'Monday 08:00', until: '2026-12-07T08:00:00.000Z' }]);
      waker.start();
      await waker.settled();
      for (let minute = 1; minute <= 4; minute++) {
        mock.timers.tick(MINUTE);
        await waker.settled();
      }
      assert.deepEqual(g.moves(), [], '07:59: not yet');
      mock.timers.tick(MINUTE);
      await waker.settled();
      assert.deepEqual(g.moves(), ['POST /me/messages/monday/move {"destinationId":"inbox-id"}']);
      await waker.stop();
    } finally {
      mock.timers.reset();
    }
  });

  test('overdue at start: back at once, without waiting for any timer', async () => {
    const t = setUp();
    await t.snooze([{ id: 'old', inMs: -3 * DAY }, { id: 'new', inMs: DAY }]);
    t.waker.start();
    await t.waker.settled();
    assert.deepEqual(await t.left(), ['new']);
    assert.equal(t.moves().length, 1);
    await t.waker.stop();
  });

  test('rearm after a run reads the lists again at once; a run of another job or kind is ignored; every inbox-rules job is watched', async () => {
    const t = setUp({ jobs: ['later', 'other'] });
    t.waker.start();
    await t.waker.settled();
    assert.deepEqual(t.clock.pending(), [RECHECK_MS]);
    await t.snooze([{ id: 'soon', inMs: 10_000 }], 'other');
    t.waker.rearm('digest');
    await t.waker.settled();
    assert.deepEqual(t.clock.pending(), [RECHECK_MS], 'not an inbox-rules job: nothing to read');
    t.waker.rearm('other');
    await t.waker.settled();
    assert.ok(t.clock.pending()[0]! <= 10_000, `set for the new entry: ${t.clock.pending().join()}`);
    await t.advance(10_000);
    assert.deepEqual(await t.left('other'), []);
    await t.waker.stop();
  });

  test('another process\'s entries (not re-armed) are found within RECHECK_MS', async () => {
    const t = setUp();
    t.waker.start();
    await t.waker.settled();
    await t.snooze([{ id: 'cli', inMs: 30_000 }]);
    await t.advance(30_000);
    assert.deepEqual(await t.left(), ['cli'], 'not read yet');
    await t.advance(RECHECK_MS - 30_000);
    assert.deepEqual(await t.left(), []);
    await t.waker.stop();
  });

  test('while the job lock is held the waker waits and tries again shortly; it never moves a message twice', async () => {
    const t = setUp();
    await t.snooze([{ id: 'm', inMs: MINUTE }]);
    t.waker.start();
    await t.waker.settled();
    const held = await new JobLock(t.store).acquire('later', 'a-run');
    // The lock's one-second wait is an unref'd timer: something must keep this test's process alive meanwhile.
    const alive = setInterval(() => undefined, 1000);
    await t.advance(MINUTE).finally(() => clearInterval(alive));
    assert.deepEqual(t.moves(), [], 'not while a run holds the job');
    assert.ok(t.clock.pending()[0]! <= BUSY_RETRY_MS);
    // Meanwhile "the run" brings it back itself, as a run does at its start.
    await t.store.set('job:later:snoozed', []);
    await held.release();
    await t.advance(10 * MINUTE);
    assert.deepEqual(t.moves(), [], 'nothing left for the waker');
    await t.waker.stop();
  });

  test('a scheduled run of the job about to start is left to bring it back (its start would find the job held)', async () => {
    let scheduled: number | undefined;
    const t = setUp({ nextRun: () => (scheduled === undefined ? null : new Date(scheduled)) });
    await t.snooze([{ id: 'm', inMs: MINUTE }]);
    scheduled = t.clock.now() + MINUTE + RUN_SOON_MS - 1000;
    t.waker.start();
    await t.advance(MINUTE);
    assert.deepEqual(t.moves(), [], 'left to the run due in 4 s');
    assert.ok(t.clock.pending()[0]! <= BUSY_RETRY_MS);
    // That run did not happen (its fire was claimed by no one, say): the waker does it on its next look.
    scheduled = t.clock.now() + 3_600_000;
    await t.advance(BUSY_RETRY_MS);
    assert.deepEqual(await t.left(), []);
    await t.waker.stop();
  });

  test('many due at once: a few per hold of the job lock, with a pause between, all back in the end', async () => {
    const t = setUp();
    const many = Array.from({ length: WAKE_BATCH * 2 + 1 }, (_, i) => ({ id: `m${i}`, inMs: -1000 + i }));
    await t.snooze(many);
    t.waker.start();
    await t.waker.settled();
    assert.equal(t.moves().length, WAKE_BATCH, 'the soonest first batch');
    assert.deepEqual(t.clock.pending(), [WAKE_PAUSE_MS]);
    await t.advance(2 * WAKE_PAUSE_MS);
    assert.deepEqual(await t.left(), []);
    assert.deepEqual(t.moves().map((c) => c.split('/')[3]), many.map((m) => m.id), 'soonest first, each once');
    assert.ok(!t.lines.some((l) => /could not|trying again/.test(l)), 'not taken for a failure');
    await t.waker.stop();
  });

  test('while a person must sign in, due messages wait (one log line), and come back once the gate opens', async () => {
    let reason: string | undefined = 'needs-signin: the refresh token was revoked';
    const t = setUp({ gate: async () => reason });
    t.waker.start();
    await t.waker.settled();
    assert.ok(!t.lines.some((l) => /wait until a person acts/.test(l)), 'nothing due: the gate is not even asked');
    await t.snooze([{ id: 'm', inMs: MINUTE }]);
    await t.advance(10 * MINUTE);
    assert.deepEqual(t.calls, [], 'no Graph call while paused');
    assert.equal(t.lines.filter((l) => /wait until a person acts/.test(l)).length, 1, 'said once');
    reason = undefined;
    await t.advance(RECHECK_MS);
    assert.deepEqual(await t.left(), []);
    assert.equal(t.lines.filter((l) => /brought back again/.test(l)).length, 1);
    await t.waker.stop();
  });

  test('a failure another try may cure is retried with a growing wait, never in a tight loop; a deleted message is forgotten', async () => {
    let down = true;
    const g = fakeGraph({ fail: (method, path) => (path.includes('/gone/') ? 404 : down && method === 'POST' ? 503 : undefined) });
    const t = setUp({ graph: g });
    await t.snooze([{ id: 'm', inMs: 0 }, { id: 'gone', inMs: 0 }]);
    t.waker.start();
    assert.equal(FAILURE_RETRY_MS, MINUTE, 'the count below takes a first wait of one minute');
    await t.advance(10 * MINUTE);
    // At 0, then 1, 2 and 4 minutes after the failure before: 4 tries in 10 minutes.
    assert.equal(g.moves().filter((c) => c.includes('/m/')).length, 4, g.calls.join('\n'));
    assert.deepEqual(await t.left(), ['m'], 'the deleted one is forgotten, the other kept');
    down = false;
    await t.advance(8 * MINUTE);
    assert.deepEqual(await t.left(), []);
    await t.waker.stop();
  });

  test('shutdown: the timer is cancelled, a wake-up in progress stops after its message and keeps the rest', async () => {
    let release!: () => void;
    let reached!: () => void;
    const moving = new Promise<void>((r) => (reached = r));
    const g = fakeGraph({ hold: { reached, released: new Promise<void>((r) => (release = r)) } });
    const t = setUp({ graph: g });
    await t.snooze([{ id: 'a', inMs: -1 }, { id: 'b', inMs: -1 }, { id: 'c', inMs: DAY }]);
    t.waker.start();
    await moving;
    const stopped = t.waker.stop();
    release();
    await stopped;
    assert.deepEqual(t.clock.pending(), [], 'no timer after stop');
    assert.equal(g.moves().length, 1, 'stopped after the message it was on');
    assert.deepEqual(await t.left(), ['b', 'c']);
    t.waker.rearm('later');
    t.waker.start();
    await t.waker.settled();
    assert.deepEqual(t.clock.pending(), [], 'a stopped waker stays stopped');
  });
});
