import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GraphClient, exponentialRetry } from '../../src/graph/index.ts';
import { JobRunner } from '../../src/jobs/runner.ts';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

const ALICE = 'alice@contoso.test';
const FOLDER_LOOKUP = '/mailFolders/msgfolderroot/childFolders';

/**
 * The runtime's own runner, but with a Graph client whose back-off is a millisecond: the retries are the
 * same in number and kind, only the waits between them are short (tests never wait on the wall clock).
 */
function quickRunner(h: Harness): JobRunner {
  const graph = new GraphClient({ graphUrl: h.rt.endpoints.graphUrl, tokens: h.rt.tokens, fetch: h.rt.fetch, log: h.rt.log, retry: exponentialRetry({ baseMs: 1, capMs: 5 }) });
  return new JobRunner({ jobs: h.rt.jobs, graph, mailboxRoot: '/me', store: h.rt.store, log: h.rt.log });
}

describe('nothing is lost to a garbage response (issue 10.6)', () => {
  let h: Harness;
  let runner: JobRunner;
  before(async () => {
    h = await startHarness({
      jobsFile: `jobs:
  - name: letters
    type: inbox-rules
    schedule: "*/5 * * * *"
    folder: inbox
    rules:
      - name: newsletters
        match: { subjectContains: "weekly letter" }
        actions: [ { moveTo: "Newsletters" } ]
`,
    });
    await signIn(h);
    runner = quickRunner(h);
    const first = await runner.run('letters');
    assert.equal(first.ok, true, first.error);
  });
  after(() => h.close());

  const inInbox = (id: string) => h.sandbox.admin.messages(ALICE, 'inbox').some((m) => m.immutableId === id);
  const deltaState = async () => {
    const keys = await h.rt.store.get(`job:letters:folder:inbox`);
    return h.rt.store.get(`job:letters:delta:${String(keys)}`);
  };

  test('a malformed JSON body on the folder lookup of a moveTo, every time: ok false with the reason, the page not committed, and the next run moves the message', async () => {
    const m = h.sandbox.admin.deliver(ALICE, { subject: 'The weekly letter #1', from: 'news@news.example.com' });
    const link = await deltaState();
    h.sandbox.admin.injectFault({ kind: 'malformed', times: 1000, match: { method: 'GET', pathContains: FOLDER_LOOKUP } });
    const bad = await runner.run('letters');
    assert.equal(bad.ok, false, 'an action that failed for good makes the run fail');
    assert.match(bad.error ?? '', /not JSON/);
    assert.ok(!bad.actions.some((a) => a.result === 'done'));
    assert.deepEqual(await deltaState(), link, 'the delta link did not move past the page');
    assert.ok(inInbox(m.immutableId), 'the message is still in the Inbox');
    assert.ok(h.sandbox.admin.faults().fired.malformed > 1, 'the client retried the garbage answer');

    h.sandbox.admin.clearFaults();
    const again = await runner.run('letters');
    assert.equal(again.ok, true, again.error);
    assert.deepEqual(again.actions.map((a) => `${a.messageId}:${a.action}:${a.result}`), [`${m.immutableId}:moveTo:done`]);
    assert.ok(!inInbox(m.immutableId), 'the replayed page moved it');
    const newsletters = h.sandbox.admin.folders(ALICE).find((f) => f.path === 'Newsletters');
    assert.ok(newsletters && h.sandbox.admin.messages(ALICE, newsletters.id).some((x) => x.immutableId === m.immutableId));
  });

  test('one malformed JSON body on the folder lookup is retried like a 503: the run succeeds', async () => {
    // Each run has its own Mailbox, so the folder is looked up again.
    const m = h.sandbox.admin.deliver(ALICE, { subject: 'The weekly letter #2', from: 'news@news.example.com' });
    h.sandbox.admin.clearFaults();
    h.sandbox.admin.injectFault({ kind: 'malformed', times: 1, match: { method: 'GET', pathContains: FOLDER_LOOKUP } });
    const run = await quickRunner(h).run('letters');
    assert.equal(h.sandbox.admin.faults().fired.malformed, 1);
    assert.equal(run.ok, true, run.error);
    assert.deepEqual(run.actions.map((a) => `${a.messageId}:${a.action}:${a.result}`), [`${m.immutableId}:moveTo:done`]);
    assert.ok(!inInbox(m.immutableId));
  });

  test('a delta page cut off mid-body, then a reset: the page is read again and acted on once', async () => {
    const m = h.sandbox.admin.deliver(ALICE, { subject: 'The weekly letter #3', from: 'news@news.example.com' });
    h.sandbox.admin.clearFaults();
    h.sandbox.admin.injectFault({ kind: 'truncated', match: { method: 'GET', pathContains: '/messages/delta' } });
    h.sandbox.admin.injectFault({ kind: 'reset', match: { method: 'GET', pathContains: '/messages/delta' } });
    const run = await runner.run('letters');
    assert.deepEqual([h.sandbox.admin.faults().fired.truncated, h.sandbox.admin.faults().fired.reset], [1, 1]);
    assert.equal(run.ok, true, run.error);
    assert.deepEqual(run.actions.map((a) => `${a.messageId}:${a.action}:${a.result}`), [`${m.immutableId}:moveTo:done`]);
    assert.ok(!inInbox(m.immutableId));
  });
});
