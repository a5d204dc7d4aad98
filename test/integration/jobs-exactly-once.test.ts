import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

const ALICE = 'alice@contoso.test';

/** A local webhook receiver counting hits per message id. */
async function webhookServer() {
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const id = (JSON.parse(body) as { message: { id: string } }).message.id;
      hits.set(id, (hits.get(id) ?? 0) + 1);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, hits, close: () => new Promise((r) => server.close(r)) };
}

const invoices = (h: Harness) => h.sandbox.admin.messages(ALICE, 'inbox').filter((m) => /invoice/i.test(m.subject));
const sentForwards = (h: Harness) => h.sandbox.admin.messages(ALICE, 'sentitems').filter((m) => m.subject.startsWith('FW: '));

describe('exactly once: a run that fails mid-page is replayed by the next run, and nothing happens twice', () => {
  let h: Harness;
  let hook: Awaited<ReturnType<typeof webhookServer>>;
  before(async () => {
    hook = await webhookServer();
    h = await startHarness({
      jobsFile: `jobs:
  - name: billing
    type: inbox-rules
    schedule: "*/5 * * * *"
    folder: inbox
    backfill: true
    rules:
      - name: invoices
        match: { subjectContains: invoice }
        actions: [ { categorize: [Billing] }, { forwardTo: [bob@contoso.test] }, { webhook: "${hook.url}" }, { markRead: true } ]
      - name: newsletters
        match: { fromDomain: news.example.com }
        actions: [ { moveTo: "Receipts/2026" }, { flag: true } ]
`,
    });
    await signIn(h);
  });
  after(async () => {
    await h.close();
    await hook.close();
  });

  test('503s on every $batch after the first fail the run before the delta link moves; the rerun completes the page', async () => {
    const bills = invoices(h);
    const newsletters = h.sandbox.admin.messages(ALICE, 'inbox').filter((m) => /news\.example\.com$/.test(m.from));
    assert.ok(bills.length > 20 && newsletters.length > 20, 'enough mail for several batches');
    h.sandbox.admin.injectFault({ kind: '503', times: 1000, after: 1, match: { method: 'POST', pathContains: '$batch' }, retryAfter: '0.01' });
    const failed = await h.rt.runner.run('billing');
    assert.equal(failed.ok, false);
    assert.match(failed.error!, /503/);
    assert.ok(h.sandbox.admin.faults().fired['503'] >= 6, 'the client retried the refused batches');
    const doneFirst = failed.actions.filter((a) => a.result === 'done');
    assert.ok(doneFirst.length > 0, 'the first batch went through');
    assert.ok(failed.actions.some((a) => a.result === 'failed' && /next run tries again/.test(a.error ?? '')));
    assert.equal((await h.rt.runner.lastRun('billing'))?.ok, false, 'the failure is recorded for status');
    assert.equal(await h.rt.store.get('job:billing:delta:' + bills[0]!.folderId), undefined, 'no delta link was stored for the failed page');

    h.sandbox.admin.clearFaults();
    const rerun = await h.rt.runner.run('billing');
    assert.equal(rerun.ok, true, rerun.error);

    // Every invoice: categorized, read, forwarded once, webhook once.
    const after = h.sandbox.admin.messages(ALICE, 'inbox').filter((m) => bills.some((b) => b.immutableId === m.immutableId));
    assert.equal(after.length, bills.length);
    for (const m of after) {
      assert.deepEqual(m.categories.filter((c) => c === 'Billing'), ['Billing'], m.subject);
      assert.equal(m.isRead, true);
    }
    assert.equal(sentForwards(h).length, bills.length, 'one forward per invoice, in Sent Items');
    assert.equal(h.sandbox.admin.messages('bob@contoso.test', 'inbox').filter((m) => m.subject.startsWith('FW: ')).length, bills.length);
    assert.equal(hook.hits.size, bills.length);
    assert.ok([...hook.hits.values()].every((n) => n === 1), 'the webhook was called once per message');
    // Each action done exactly once across the two runs.
    const done = [...failed.actions, ...rerun.actions].filter((a) => a.result === 'done');
    const keys = done.map((a) => `${a.messageId}:${a.action}`);
    assert.equal(new Set(keys).size, keys.length, 'no action was done twice');
    assert.equal(done.filter((a) => a.action === 'categorize').length, bills.length);
    // Newsletters moved into the created path, and flagged (before the move).
    const receipts = h.sandbox.admin.folders(ALICE).find((f) => f.path === 'Receipts/2026');
    assert.ok(receipts, 'Receipts/2026 was created');
    const moved = h.sandbox.admin.messages(ALICE, receipts.id);
    assert.equal(moved.length, newsletters.length);
    assert.ok(moved.every((m) => m.flagStatus === 'flagged'));
    // The audit log has both runs' actions, bounded to the newest 500.
    const audit = await h.rt.runner.recentActions({ job: 'billing', limit: 10_000 });
    assert.equal(audit.length, 500, `${failed.actions.length + rerun.actions.length} actions, 500 kept`);
    const forwards = audit.filter((a) => a.action === 'forwardTo' && a.result === 'done').map((a) => a.messageId);
    assert.ok(forwards.length > 0);
    assert.equal(new Set(forwards).size, forwards.length);
    const last = rerun.actions[rerun.actions.length - 1]!;
    assert.deepEqual([audit[0]!.messageId, audit[0]!.action, audit[0]!.result], [last.messageId, last.action, last.result]);
  });

  test('a quiet run is one Graph request (the delta link; the folder id is cached)', async () => {
    const quiet = await h.rt.runner.run('billing');
    assert.equal(quiet.ok, true, quiet.error);
    assert.equal(quiet.graphRequests, 1);
    assert.equal(quiet.actions.length, 0);
  });

  test('a malformed delta page is read again, like a 503 (issue 10.6): the run acts on the new mail once', async () => {
    h.sandbox.admin.deliver(ALICE, { subject: 'Invoice INV-9001', from: 'billing@vendor.example' });
    h.sandbox.admin.clearFaults();
    h.sandbox.admin.injectFault({ kind: 'malformed', match: { pathContains: '/messages/delta' } });
    const run = await h.rt.runner.run('billing');
    assert.equal(h.sandbox.admin.faults().fired.malformed, 1);
    assert.equal(run.ok, true, run.error);
    assert.deepEqual(run.actions.map((a) => `${a.action}:${a.result}`).sort(), ['categorize:done', 'forwardTo:done', 'markRead:done', 'webhook:done']);
  });

  test('a connection reset on a batch with a forward: the forward is reported unsure and never sent, the PATCH beside it is done by the next run', async () => {
    const m = h.sandbox.admin.deliver(ALICE, { subject: 'Invoice INV-9002', from: 'billing@vendor.example' });
    const before = sentForwards(h).length;
    h.sandbox.admin.injectFault({ kind: 'reset', match: { pathContains: '$batch' } });
    const cut = await h.rt.runner.run('billing');
    assert.equal(cut.ok, false, 'the PATCH may be repeated, so the page waits for it');
    const fw = cut.actions.find((a) => a.action === 'forwardTo' && a.messageId === m.immutableId);
    assert.equal(fw?.result, 'unsure');
    assert.match(fw!.error!, /may or may not have happened; it is not repeated/);
    const next = await h.rt.runner.run('billing');
    assert.equal(next.ok, true, next.error);
    assert.ok(!next.actions.some((a) => a.action === 'forwardTo'), 'the forward is not tried again');
    assert.deepEqual(next.actions.filter((a) => a.messageId === m.immutableId).map((a) => `${a.action}:${a.result}`).sort(), ['categorize:done', 'markRead:done']);
    // The reset came before Graph acted: nothing was forwarded, and, since nobody could know, nothing is re-sent.
    assert.equal(sentForwards(h).length, before);
    assert.equal(hook.hits.get(m.immutableId), 1, 'the webhook (sent apart) was called once');
    const audit = await h.rt.runner.recentActions({ job: 'billing', limit: 50 });
    assert.ok(audit.some((a) => a.messageId === m.immutableId && a.action === 'forwardTo' && a.result === 'unsure'), 'the audit log says so');
  });

  test('an expired delta state starts a new sync that acts only on mail since the last complete pass', async () => {
    const fresh = h.sandbox.admin.deliver(ALICE, { subject: 'Invoice INV-9003', from: 'billing@vendor.example' });
    h.sandbox.admin.expireDeltaTokens();
    const run = await h.rt.runner.run('billing');
    assert.equal(run.ok, true, run.error);
    assert.ok(run.examined > 20, 'the whole folder was read again');
    assert.deepEqual([...new Set(run.actions.map((a) => a.messageId))], [fresh.immutableId], 'only the new message was acted on');
    assert.equal(hook.hits.get(fresh.immutableId), 1);
  });
});

describe('backfill: false acts only on mail that arrives after the first run; dry run writes nothing', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      jobsFile: `jobs:
  - name: tidy
    type: inbox-rules
    schedule: "*/5 * * * *"
    folder: inbox
    rules:
      - name: copy-invoices
        match: { subjectContains: invoice }
        actions: [ { copyTo: "Finance/Copies" }, { setImportance: high } ]
      - name: drop-notifications
        match: { from: it-noreply@contoso.test }
        actions: [ { delete: true } ]
`,
    });
    await signIn(h);
  });
  after(() => h.close());

  test('dry run on the first pass: nothing planned (no backfill), nothing written', async () => {
    const snapshot = JSON.stringify(h.sandbox.admin.messages(ALICE));
    const dry = await h.rt.runner.run('tidy', { dryRun: true });
    assert.equal(dry.ok, true, dry.error);
    assert.equal(dry.actions.length, 0);
    assert.equal(JSON.stringify(h.sandbox.admin.messages(ALICE)), snapshot);
    assert.equal((await h.rt.runner.lastRun('tidy')), undefined, 'a dry run is not recorded as the last run');
  });

  test('the first real run records the state only; later mail gets copyTo (path created), setImportance and delete', async () => {
    const first = await h.rt.runner.run('tidy');
    assert.equal(first.ok, true, first.error);
    assert.equal(first.actions.length, 0, 'backfill: false');
    const inv = h.sandbox.admin.deliver(ALICE, { subject: 'Invoice INV-7', from: 'billing@vendor.example' });
    const note = h.sandbox.admin.deliver(ALICE, { subject: 'Password expiry', from: 'it-noreply@contoso.test' });
    const snapshot = JSON.stringify(h.sandbox.admin.messages(ALICE));
    const dry = await h.rt.runner.run('tidy', { dryRun: true });
    assert.deepEqual(dry.actions.map((a) => `${a.action}:${a.result}`).sort(), ['copyTo:planned', 'delete:planned', 'setImportance:planned']);
    assert.equal(JSON.stringify(h.sandbox.admin.messages(ALICE)), snapshot, 'the dry run changed nothing');
    assert.ok(!h.sandbox.admin.folders(ALICE).some((f) => f.path === 'Finance/Copies'), 'the dry run created no folder');
    const real = await h.rt.runner.run('tidy');
    assert.equal(real.ok, true, real.error);
    assert.deepEqual(real.actions.map((a) => `${a.action}:${a.result}`).sort(), ['copyTo:done', 'delete:done', 'setImportance:done']);
    const copies = h.sandbox.admin.folders(ALICE).find((f) => f.path === 'Finance/Copies');
    assert.ok(copies);
    assert.deepEqual(h.sandbox.admin.messages(ALICE, copies.id).map((m) => m.subject), ['Invoice INV-7']);
    assert.equal(h.sandbox.admin.messages(ALICE, 'inbox').find((m) => m.immutableId === inv.immutableId)?.importance, 'high');
    assert.ok(h.sandbox.admin.messages(ALICE, 'deleteditems').some((m) => m.immutableId === note.immutableId), 'delete moves to Deleted Items');
  });
});
