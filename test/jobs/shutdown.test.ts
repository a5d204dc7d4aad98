import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Scheduler } from '../../src/jobs/index.ts';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

const EVERY_SECOND = `jobs:
  - name: tag-all
    type: inbox-rules
    schedule: "* * * * * *"
    backfill: true
    rules:
      - name: everything
        match: { olderThanDays: 0 }
        actions: [ { categorize: [Seen] } ]
`;

describe('graceful shutdown: a running job finishes its page, then stops; the next run goes on without acting twice', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ jobsFile: EVERY_SECOND });
    await signIn(h);
    // 2,500 messages: the job walks three delta pages of 1,000.
    h.sandbox.admin.generate('alice@contoso.test', 2500, 7);
  });
  after(() => h.close());

  test('a stop request between pages ends the run there, with a clear reason, and keeps its progress', async () => {
    const stop = new AbortController();
    let pages = 0;
    const first = await h.rt.runner.run('tag-all', {
      stop: stop.signal,
      onProgress: () => {
        pages++;
        stop.abort();
      },
    });
    assert.equal(pages, 1, 'exactly one page was completed');
    assert.equal(first.ok, false);
    assert.match(first.error!, /Stopped between two pages because the agent is shutting down\. Nothing to do: the next run continues where this one stopped\./);
    const firstTagged = first.actions.filter((a) => a.result === 'done').length;
    assert.ok(firstTagged > 0 && firstTagged <= 1000, `the first page's actions all committed (${firstTagged})`);

    const second = await h.rt.runner.run('tag-all');
    assert.equal(second.ok, true, second.error);
    const tagged = h.sandbox.admin.messages('alice@contoso.test', 'inbox').filter((m) => m.categories.includes('Seen'));
    assert.equal(tagged.length, 2500, 'every message tagged once the second run finished');
    const doneIds = [...first.actions, ...second.actions].filter((a) => a.result === 'done').map((a) => a.messageId);
    assert.equal(new Set(doneIds).size, doneIds.length, 'no message was acted on twice');
  });

  test('Scheduler.stop() lets the scheduled run reach its safe point and reports a clean stop', async () => {
    // A new mailbox has new folder ids: forget the job's cached folder id, as a run would after a 404.
    h.sandbox.admin.generate('alice@contoso.test', 2500, 8);
    await h.rt.store.delete('job:tag-all:folder:inbox');
    const scheduler = new Scheduler(h.rt.runner, h.rt.log);
    scheduler.start();
    for (let i = 0; i < 300 && !scheduler.busy; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(scheduler.busy, 'the every-second schedule fired');
    const clean = await scheduler.stop(20_000);
    assert.equal(clean, true);
    assert.equal(scheduler.busy, false);
    const last = await h.rt.runner.lastRun('tag-all');
    assert.ok(last, 'the run was recorded');
    assert.ok(last.ok || /shutting down/.test(last.error ?? ''), JSON.stringify(last));
  });
});
