import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Rule } from '../../src/config/jobs-file.ts';
import type { JobRunResult } from '../../src/jobs/runner.ts';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

const ALICE = 'alice@contoso.test';
const inbox = (h: Harness) => h.sandbox.admin.messages(ALICE, 'inbox');
const deltaCalls = (h: Harness) => h.sandbox.admin.graphRequests().filter((r) => r.path.includes('/messages/delta')).length;
/** A regenerated mailbox has new folder ids: the job starts over as on a new mailbox. */
const forget = async (h: Harness, folderId: string) => {
  await h.rt.store.delete(`job:sweep:delta:${folderId}`);
  await h.rt.store.delete('job:sweep:folder:inbox');
};
const doneIds = (...runs: JobRunResult[]) => runs.flatMap((r) => r.actions.filter((a) => a.result === 'done').map((a) => a.messageId));

/**
 * 1,500 messages are two delta pages (1000 + 500). The agent asks for the next page while the current
 * page's last batches run, and moves a message as soon as its own PATCH is done: these tests hold the
 * exactly-once promises across that overlap.
 */
describe('pages overlap, and exactly-once still holds across them', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      jobsFile: `jobs:
  - name: sweep
    type: inbox-rules
    schedule: "*/5 * * * *"
    folder: inbox
    backfill: true
    rules:
      - name: everything
        match: { any: [ { isRead: true }, { isRead: false } ] }
        actions: [ { categorize: [Seen] } ]
`,
    });
    await signIn(h);
  });
  after(() => h.close());

  test('page 1 fails while page 2 was already read: nothing of page 2 is acted on, and the rerun does each message once', async () => {
    h.sandbox.admin.generate(ALICE, 1500, 7);
    const folderId = inbox(h)[0]!.folderId;
    h.sandbox.admin.clearLogs();
    // The last 10 PATCHes of page 1 keep failing (503): the page cannot commit.
    h.sandbox.admin.injectFault({ kind: '503', match: { method: 'PATCH' }, after: 990, times: 100_000, retryAfter: '0.01' });
    const failed = await h.rt.runner.run('sweep');
    assert.equal(failed.ok, false);
    assert.match(failed.error!, /503/);
    assert.equal(deltaCalls(h), 2, 'page 2 was read while page 1 finished');
    assert.equal(doneIds(failed).length, 990, 'only page 1 was acted on');
    assert.equal(inbox(h).filter((m) => m.categories.includes('Seen')).length, 990);
    assert.equal(await h.rt.store.get(`job:sweep:delta:${folderId}`), undefined, 'no link stored past the failed page');

    h.sandbox.admin.clearFaults();
    const rerun = await h.rt.runner.run('sweep');
    assert.equal(rerun.ok, true, rerun.error);
    const done = doneIds(failed, rerun);
    assert.equal(done.length, 1500);
    assert.equal(new Set(done).size, 1500, 'no message was acted on twice');
    assert.ok(inbox(h).every((m) => m.categories.filter((c) => c === 'Seen').length === 1));
  });

  test('page 2 cannot be read after page 1 is done: page 1 stays committed, and the rerun starts at page 2', async () => {
    h.sandbox.admin.generate(ALICE, 1500, 8);
    const folderId = inbox(h)[0]!.folderId;
    await forget(h, folderId);
    // Page 2 keeps failing: every retry of the client gets a 503 too.
    h.sandbox.admin.injectFault({ kind: '503', match: { pathContains: '/messages/delta' }, after: 1, times: 100_000, retryAfter: '0.01' });
    const failed = await h.rt.runner.run('sweep');
    h.sandbox.admin.clearFaults();
    assert.equal(failed.ok, false);
    assert.match(failed.error!, /503/);
    assert.equal(doneIds(failed).length, 1000, 'page 1 was acted on');
    const stored = await h.rt.store.get<{ link: string }>(`job:sweep:delta:${folderId}`);
    assert.match(stored?.link ?? '', /skiptoken/, 'the link of page 2 was stored with page 1');

    h.sandbox.admin.clearLogs();
    const rerun = await h.rt.runner.run('sweep');
    assert.equal(rerun.ok, true, rerun.error);
    assert.equal(doneIds(rerun).length, 500, 'the rerun did page 2 only');
    const done = doneIds(failed, rerun);
    assert.equal(new Set(done).size, 1500, 'each message once');
  });

  test('a move waits for its own message: when that PATCH keeps failing the message stays, the rest of the page moves', async () => {
    const job = h.rt.runner.jobs.find((j) => j.name === 'sweep')!;
    const rules: Rule[] = [{ name: 'news', match: { fromDomain: 'news.example.com' }, actions: [{ markRead: true }, { moveTo: 'Newsletters' }], stop: false }];
    Object.assign(job, { rules });
    h.sandbox.admin.generate(ALICE, 300, 9);
    const folderId = inbox(h)[0]!.folderId;
    await forget(h, folderId);
    const news = inbox(h).filter((m) => /news\.example\.com$/.test(m.from));
    assert.ok(news.length > 25, `enough newsletters for two batches (${news.length})`);
    const stuck = news.filter((m) => !m.isRead)[3]!;
    h.sandbox.admin.injectFault({ kind: '503', match: { method: 'PATCH', pathContains: stuck.immutableId }, times: 100_000, retryAfter: '0.01' });
    const failed = await h.rt.runner.run('sweep');
    assert.equal(failed.ok, false);
    const left = inbox(h).find((m) => m.immutableId === stuck.immutableId);
    assert.ok(left && !left.isRead, 'the message whose PATCH failed was neither read nor moved');
    const newsletters = h.sandbox.admin.folders(ALICE).find((f) => f.path === 'Newsletters')!;
    assert.equal(h.sandbox.admin.messages(ALICE, newsletters.id).length, news.length - 1, 'every other newsletter was moved');
    assert.ok(h.sandbox.admin.messages(ALICE, newsletters.id).every((m) => m.isRead), 'each one read before its move');

    h.sandbox.admin.clearFaults();
    const rerun = await h.rt.runner.run('sweep');
    assert.equal(rerun.ok, true, rerun.error);
    assert.deepEqual(rerun.actions.filter((a) => a.result === 'done').map((a) => `${a.messageId === stuck.immutableId}:${a.action}`).sort(), ['true:markRead', 'true:moveTo']);
    assert.equal(h.sandbox.admin.messages(ALICE, newsletters.id).length, news.length);
  });
});

describe('a rule edited to match on a field the stored delta link does not carry', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      jobsFile: `jobs:
  - name: mail
    type: inbox-rules
    schedule: "*/5 * * * *"
    folder: inbox
    rules:
      - name: invoices
        match: { subjectContains: invoice }
        actions: [ { categorize: [Billing] } ]
`,
    });
    await signIn(h);
  });
  after(() => h.close());

  test('starts a new sync that reads the field, acting only on mail since the last complete pass', async () => {
    const old = h.sandbox.admin.deliver(ALICE, { subject: 'Old transfer note', body: 'please wire transfer today', hasAttachments: true, receivedDateTime: new Date(Date.now() - 3600_000).toISOString() });
    const first = await h.rt.runner.run('mail');
    assert.equal(first.ok, true, first.error);
    const job = h.rt.runner.jobs.find((j) => j.name === 'mail')!;
    const rules: Rule[] = [
      ...(job.type === 'inbox-rules' ? job.rules : []),
      { name: 'wires', match: { bodyContains: 'wire transfer' }, actions: [{ flag: true }], stop: false },
      { name: 'attachments', match: { hasAttachments: true }, actions: [{ setImportance: 'high' }], stop: false },
    ];
    Object.assign(job, { rules });
    const fresh = h.sandbox.admin.deliver(ALICE, { subject: 'New transfer note', body: '<p>Please <b>wire transfer</b> the deposit</p>', bodyContentType: 'html', hasAttachments: true });
    const second = await h.rt.runner.run('mail');
    assert.equal(second.ok, true, second.error);
    assert.ok(h.logs.some((l) => l.includes('starting a new sync of the folder')), 'the new sync is logged');
    assert.ok(second.examined > 2, 'the folder was read again with the new fields');
    assert.deepEqual(second.actions.map((a) => `${a.messageId === fresh.immutableId}:${a.action}:${a.result}`).sort(), ['true:flag:done', 'true:setImportance:done']);
    const now = inbox(h);
    assert.equal(now.find((m) => m.immutableId === fresh.immutableId)?.flagStatus, 'flagged');
    assert.equal(now.find((m) => m.immutableId === old.immutableId)?.flagStatus, 'notFlagged', 'mail from before the edit is left alone (backfill: false)');
    const quiet = await h.rt.runner.run('mail');
    assert.equal(quiet.ok, true, quiet.error);
    assert.equal(quiet.graphRequests, 1, 'the new link carries the fields: no further new sync');
  });
});
