import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

const ALICE = 'alice@contoso.test';
const BOB = 'bob@contoso.test';

/**
 * Issue 11.4: a write that must not happen twice (forward, copy, sendMail) is sent again only when the answer
 * proves Graph did not carry it out (429, 503); after a 500, 502, 504 or a reset once sent it is reported
 * "unsure" and never repeated. Idempotent writes (PATCH, move with immutable ids) are still retried.
 */
describe('writes that must not happen twice are never blindly re-sent', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      jobsFile: `jobs:
  - name: fwd
    type: inbox-rules
    schedule: "*/5 * * * *"
    folder: inbox
    rules:
      - name: invoices
        match: { subjectContains: invoice }
        actions: [ { forwardTo: [${BOB}] }, { markRead: true } ]
      - name: receipts
        match: { subjectContains: receipt }
        actions: [ { copyTo: "Receipts" }, { flag: true } ]
  - name: agenda
    type: agenda-digest
    schedule: "0 7 * * *"
    sendTo: me
`,
    });
    await signIn(h);
    const first = await h.rt.runner.run('fwd');
    assert.equal(first.ok, true, first.error);
  });
  after(() => h.close());
  beforeEach(() => h.sandbox.admin.clearFaults());

  const forwardsOf = (subject: string) => h.sandbox.admin.messages(BOB, 'inbox').filter((m) => m.subject === `FW: ${subject}`).length;
  const outcomes = (actions: { action: string; result: string }[]) => actions.map((a) => `${a.action}:${a.result}`).sort();

  test('a 504 on the forward after Graph sent it: reported unsure, not re-sent, the run ok; the next run leaves it alone', async () => {
    const m = h.sandbox.admin.deliver(ALICE, { subject: 'Invoice 504', from: 'billing@vendor.example' });
    h.sandbox.admin.injectFault({ kind: '504', match: { method: 'POST', pathContains: '/forward' } });
    const run = await h.rt.runner.run('fwd');
    assert.equal(h.sandbox.admin.faults().fired['504'], 1);
    assert.equal(run.ok, true, 'unsure is not a failure: nothing is left to retry');
    assert.deepEqual(outcomes(run.actions), ['forwardTo:unsure', 'markRead:done']);
    const unsure = run.actions.find((a) => a.result === 'unsure')!;
    assert.equal(unsure.messageId, m.immutableId);
    assert.match(unsure.error!, /504 GatewayTimeout.*may or may not have happened; it is not repeated/);
    assert.doesNotMatch(unsure.error!, /retries|tries again/, 'no word of a retry that will not come');
    assert.equal(forwardsOf('Invoice 504'), 1, 'Graph forwarded it once, and it was not sent again');
    const audit = await h.rt.runner.recentActions({ job: 'fwd', limit: 10 });
    assert.ok(audit.some((a) => a.messageId === m.immutableId && a.action === 'forwardTo' && a.result === 'unsure' && /not repeated/.test(a.error ?? '')), 'the audit log says so');
    h.sandbox.admin.deliver(ALICE, { subject: 'hello', from: 'friend@example.com' });
    const next = await h.rt.runner.run('fwd');
    assert.equal(next.ok, true, next.error);
    assert.equal(forwardsOf('Invoice 504'), 1);
  });

  test('a 500 on the whole $batch after Graph ran it: the forward is unsure, the PATCH beside it is done again by the next run', async () => {
    const m = h.sandbox.admin.deliver(ALICE, { subject: 'Invoice 500', from: 'billing@vendor.example' });
    h.sandbox.admin.injectFault({ kind: '500', match: { method: 'POST', pathContains: '$batch' } });
    const run = await h.rt.runner.run('fwd');
    assert.equal(h.sandbox.admin.faults().fired['500'], 1, 'the batch holding a forward was not sent again');
    assert.equal(run.ok, false, 'the PATCH may be repeated, so the page waits for the next run');
    assert.deepEqual(outcomes(run.actions), ['forwardTo:unsure', 'markRead:failed']);
    const next = await h.rt.runner.run('fwd');
    assert.equal(next.ok, true, next.error);
    // Graph had applied the PATCH before the answer was lost: the replay finds the message read, nothing left to do.
    assert.ok(!next.actions.some((a) => a.action === 'forwardTo'), 'the forward is not tried again');
    assert.equal(forwardsOf('Invoice 500'), 1, 'forwarded exactly once');
    assert.equal(h.sandbox.admin.messages(ALICE, 'inbox').find((x) => x.immutableId === m.immutableId)?.isRead, true);
  });

  test('a 429 or a 503 on the forward proves it did not run: it is sent again and done once', async () => {
    h.sandbox.admin.deliver(ALICE, { subject: 'Invoice 429', from: 'billing@vendor.example' });
    h.sandbox.admin.injectFault({ kind: '429', match: { method: 'POST', pathContains: '/forward' }, retryAfter: '0.01' });
    h.sandbox.admin.injectFault({ kind: '503', match: { method: 'POST', pathContains: '/forward' }, retryAfter: '0.01' });
    const run = await h.rt.runner.run('fwd');
    assert.equal(run.ok, true, run.error);
    assert.deepEqual(outcomes(run.actions), ['forwardTo:done', 'markRead:done']);
    assert.equal(forwardsOf('Invoice 429'), 1);
  });

  test('a 502 on a PATCH after Graph applied it is retried (harmless to repeat): the run completes', async () => {
    h.sandbox.admin.deliver(ALICE, { subject: 'Invoice 502', from: 'billing@vendor.example' });
    h.sandbox.admin.injectFault({ kind: '502', match: { method: 'PATCH' }, retryAfter: '0.01' });
    const run = await h.rt.runner.run('fwd');
    assert.equal(h.sandbox.admin.faults().fired['502'], 1);
    assert.equal(run.ok, true, run.error);
    assert.deepEqual(outcomes(run.actions), ['forwardTo:done', 'markRead:done']);
  });

  test('a copy whose answer is a reset after Graph copied: unsure, one copy only, never a second', async () => {
    h.sandbox.admin.deliver(ALICE, { subject: 'Receipt 77', from: 'shop@example.com' });
    // The copy travels in a $batch: the reset loses the whole batch's answer after Graph ran it.
    h.sandbox.admin.injectFault({ kind: 'reset', phase: 'after', match: { method: 'POST', pathContains: '$batch' } });
    const run = await h.rt.runner.run('fwd');
    assert.equal(run.ok, false, 'the flag beside it is retried by the next run');
    assert.deepEqual(outcomes(run.actions), ['copyTo:unsure', 'flag:failed']);
    const next = await h.rt.runner.run('fwd');
    assert.equal(next.ok, true, next.error);
    assert.ok(!next.actions.some((a) => a.action === 'copyTo'), 'the copy is not tried again');
    assert.equal(h.sandbox.admin.messages(ALICE, 'inbox').find((x) => x.subject === 'Receipt 77')?.flagStatus, 'flagged');
    const receipts = h.sandbox.admin.folders(ALICE).find((f) => f.path === 'Receipts');
    assert.equal(h.sandbox.admin.messages(ALICE, receipts!.id).filter((x) => x.subject === 'Receipt 77').length, 1);
  });

  test('the digest: a 504 after sendMail sent it is reported unsure and not sent again', async () => {
    h.sandbox.admin.injectFault({ kind: '504', match: { method: 'POST', pathContains: '/sendMail' } });
    const digests = () => h.sandbox.admin.messages(ALICE, 'sentitems').filter((x) => x.subject.startsWith('Agenda for')).length;
    const before = digests();
    const run = await h.rt.runner.run('agenda');
    assert.equal(h.sandbox.admin.faults().fired['504'], 1);
    assert.equal(run.ok, true, run.error);
    assert.deepEqual(outcomes(run.actions), ['sendDigest:unsure']);
    assert.match(run.actions[0]!.error!, /may or may not have arrived; it is not sent again/);
    assert.doesNotMatch(run.actions[0]!.error!, /retries|tries again/);
    assert.equal(digests(), before + 1, 'sent once by Graph, never re-sent');
    const audit = await h.rt.runner.recentActions({ job: 'agenda', limit: 5 });
    assert.equal(audit[0]?.result, 'unsure');
  });
});

describe('webhooks by the same rule; an action refused for good makes the run ok:false', () => {
  let h: Harness;
  let server: Server;
  /** Status codes the receiver answers with, in order (then 204); every call is counted. */
  const answers: number[] = [];
  let calls = 0;
  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        calls++;
        res.writeHead(answers.shift() ?? 204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    h = await startHarness({
      jobsFile: `jobs:
  - name: hooks
    type: inbox-rules
    schedule: "*/5 * * * *"
    folder: inbox
    rules:
      - name: alerts
        match: { subjectContains: alert }
        actions: [ { webhook: "${url}" } ]
`,
    });
    await signIn(h);
    assert.equal((await h.rt.runner.run('hooks')).ok, true);
  });
  after(async () => {
    await h.close();
    await new Promise((resolve) => server.close(resolve));
  });

  test('a webhook answering 503 did not act: the page waits and the next run calls it again, once', async () => {
    h.sandbox.admin.deliver(ALICE, { subject: 'alert 503', from: 'monitor@example.com' });
    answers.push(503);
    calls = 0;
    const run = await h.rt.runner.run('hooks');
    assert.equal(run.ok, false);
    assert.deepEqual(run.actions.map((a) => a.result), ['failed']);
    assert.match(run.actions[0]!.error!, /HTTP 503.*next run tries again/);
    const next = await h.rt.runner.run('hooks');
    assert.equal(next.ok, true, next.error);
    assert.deepEqual(next.actions.map((a) => a.result), ['done']);
    assert.equal(calls, 2);
  });

  test('a webhook answering 502 may have acted: unsure, not called again', async () => {
    h.sandbox.admin.deliver(ALICE, { subject: 'alert 502', from: 'monitor@example.com' });
    answers.push(502);
    calls = 0;
    const run = await h.rt.runner.run('hooks');
    assert.equal(run.ok, true, run.error);
    assert.deepEqual(run.actions.map((a) => a.result), ['unsure']);
    assert.equal(calls, 1);
  });

  test('a webhook answering 400 refused it for good: not retried, and the run says ok:false with the reason (DESIGN.md)', async () => {
    h.sandbox.admin.deliver(ALICE, { subject: 'alert 400', from: 'monitor@example.com' });
    answers.push(400);
    calls = 0;
    const run = await h.rt.runner.run('hooks');
    assert.equal(run.ok, false);
    assert.match(run.error ?? '', /1 action failed and will not be retried; the first: The webhook .* answered HTTP 400/);
    assert.deepEqual(run.actions.map((a) => `${a.result}:${a.error}`), [`failed:${run.actions[0]!.error}`]);
    assert.match(run.actions[0]!.error!, /not retried/);
    const next = await h.rt.runner.run('hooks');
    assert.equal(next.ok, true, next.error);
    assert.equal(next.actions.length, 0, 'the page was committed: nothing is tried again');
    assert.equal(calls, 1);
  });
});
