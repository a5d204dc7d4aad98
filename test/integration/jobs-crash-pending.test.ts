import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

const ALICE = 'alice@contoso.test';
const BOB = 'bob@contoso.test';
const MESSAGES = 200;

/**
 * Regression, found by the proof suite: a crash mid-page gave up EVERY once-only action of the page (a forward for
 * each of a page's 1,000 messages), because all of them were marked pending in one write before the first was sent,
 * and a replay reports pending ones 'skipped' and never does them. Now each batch is marked as it leaves, at most four
 * at a time: a run stopped mid-page gives up only what was in flight, and the replay does the rest, once.
 */
describe('a run stopped mid-page gives up only the once-only actions in flight, not the whole page', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      jobsFile: `jobs:
  - name: fwd
    type: inbox-rules
    schedule: "*/5 * * * *"
    folder: inbox
    backfill: true
    rules:
      - name: all
        match: { subjectContains: order }
        actions: [ { forwardTo: [${BOB}] } ]
`,
    });
    await signIn(h);
    h.sandbox.admin.generate(ALICE, 0, 1);
    for (let i = 0; i < MESSAGES; i++) h.sandbox.admin.deliver(ALICE, { subject: `Order ${i}`, from: 'shop@vendor.example' });
  });
  after(() => h.close());

  const forwarded = () => h.sandbox.admin.messages(BOB, 'inbox').filter((m) => m.subject.startsWith('FW: Order ')).length;

  test('stopped after the first batch of forwards came back: most of the page is still to do, and the replay does it once', async () => {
    h.sandbox.admin.setLatency(150);
    const abort = new AbortController();
    const watch = setInterval(() => {
      if (h.sandbox.admin.graphRequests().some((r) => r.path.endsWith('/forward') && r.status === 202)) abort.abort(new Error('stopped mid-page, as by a crash'));
    }, 5);
    const first = await h.rt.runner.run('fwd', { signal: abort.signal }).finally(() => clearInterval(watch));
    h.sandbox.admin.setLatency(0);
    assert.equal(first.ok, false, 'the stopped run did not finish its page');
    const sentBefore = forwarded();
    assert.ok(sentBefore > 0 && sentBefore < MESSAGES, `${sentBefore} forwards went out before the stop`);

    const replay = await h.rt.runner.run('fwd');
    assert.equal(replay.ok, true, replay.error);
    const skipped = replay.actions.filter((a) => a.action === 'forwardTo' && a.result === 'skipped').length;
    const done = replay.actions.filter((a) => a.action === 'forwardTo' && a.result === 'done').length;
    // At most four batches of 20 were in flight when it stopped; before the fix every one of the 200 was given up.
    assert.ok(skipped <= 4 * 20, `${skipped} forwards given up (only those in flight may be)`);
    assert.ok(done >= MESSAGES - 4 * 20 - sentBefore, `${done} forwards done by the replay`);
    assert.equal(forwarded(), sentBefore + done, 'each forward happened once: none twice');
    assert.equal(sentBefore + done + skipped >= MESSAGES, true, 'every message is accounted for: forwarded, or reported skipped');
  });
});
