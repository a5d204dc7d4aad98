import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { JobRunResult } from '../../src/jobs/runner.ts';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

const ALICE = 'alice@contoso.test';
const JOBS = `jobs:
  - name: sweep
    type: inbox-rules
    schedule: "*/5 * * * *"
    folder: inbox
    backfill: true
    rules:
      - name: everything
        match: { any: [ { isRead: true }, { isRead: false } ] }
        actions: [ { categorize: [Seen] } ]
`;
const inbox = (h: Harness) => h.sandbox.admin.messages(ALICE, 'inbox');
const doneIds = (...runs: JobRunResult[]) => runs.flatMap((r) => r.actions.filter((a) => a.result === 'done').map((a) => a.messageId));

describe('the Graph request budget (GRAPH_BUDGET) against a sandbox that enforces it', () => {
  const harnesses: Harness[] = [];
  after(() => Promise.all(harnesses.map((h) => h.close())));

  test('a backfill under 100 requests per 3 s (agent and sandbox alike) draws no budget 429 and leaves every message done once', async () => {
    const h = await startHarness({ jobsFile: JOBS, env: { GRAPH_BUDGET: '100/3s', LOG_LEVEL: 'info' }, sandboxOptions: { budget: { limit: 100, windowMs: 3000 } } });
    harnesses.push(h);
    await signIn(h);
    h.sandbox.admin.generate(ALICE, 250, 11);
    h.sandbox.admin.clearLogs();
    const result = await h.rt.runner.run('sweep');
    assert.equal(result.ok, true, result.error);
    assert.equal(result.deferred, undefined);
    assert.equal(doneIds(result).length, 250);
    // Over two windows' worth of requests (each batched PATCH counting), so the pacing really was put to work.
    assert.ok(h.sandbox.admin.graphRequests().filter((r) => r.inBatch).length >= 250);
    assert.equal(h.sandbox.admin.budget().throttled, 0, 'the sandbox refused requests for the budget');
    assert.equal(h.sandbox.admin.graphRequests().filter((r) => r.status === 429).length, 0);
    assert.ok(inbox(h).every((m) => m.categories.filter((c) => c === 'Seen').length === 1));
  });

  test('a 429 with a Retry-After of minutes stops the run after the last whole page, says when it resumes, and the next run continues', async () => {
    // The sandbox allows 1,100 per 10 min; the agent's own budget is the real one, so the sandbox runs out first:
    // page 1 (1000 PATCHes) fits, page 2 (500) does not.
    const h = await startHarness({ jobsFile: JOBS, sandboxOptions: { budget: { limit: 1100, windowMs: 600_000 } } });
    harnesses.push(h);
    await signIn(h);
    h.sandbox.admin.generate(ALICE, 1500, 12);
    const folderId = inbox(h)[0]!.folderId;
    const before = Date.now();
    const first = await h.rt.runner.run('sweep');
    assert.equal(first.ok, true, first.error);
    assert.ok(first.deferred, 'the run says it was deferred');
    const until = Date.parse(first.deferred.until);
    assert.ok(until >= before + 60_000 && until <= Date.now() + 600_000 + 1000, `resumes at ${first.deferred.until}`);
    assert.match(first.deferred.reason, /429 TooManyRequests with Retry-After \d+/);
    const page1 = doneIds(first);
    assert.ok(page1.length > 1000 && page1.length < 1100, `${page1.length} done`);
    // Page 1 is committed: the stored link is page 2's.
    const stored = await h.rt.store.get<{ link: string; phase: string }>(`job:sweep:delta:${folderId}`);
    assert.match(stored?.link ?? '', /skiptoken/);
    // Not a failure a person must fix: no failure counted, nothing to notify.
    const last = await h.rt.runner.lastRun('sweep');
    assert.equal(last?.failuresInARow, 0);
    assert.equal(last?.deferred?.until, first.deferred.until);
    assert.equal((await h.rt.notifier.active()).length, 0);
    assert.ok(h.logs.some((l) => l.includes('run deferred')));

    // A run while the pause lasts sends nothing and is deferred again.
    const early = await h.rt.runner.run('sweep');
    assert.equal(early.ok, true);
    assert.equal(early.deferred?.until, first.deferred.until);
    assert.equal(early.graphRequests, 0);

    // Once the pause is over (and Graph's window has moved on), the next run continues with page 2.
    h.sandbox.admin.setBudget({ limit: 100_000 });
    h.advance(until - Date.now() + 1000);
    const next = await h.rt.runner.run('sweep');
    assert.equal(next.ok, true, next.error);
    assert.equal(next.deferred, undefined);
    const all = doneIds(first, early, next);
    assert.equal(all.length, 1500);
    assert.equal(new Set(all).size, 1500, 'no message acted on twice');
    assert.ok(inbox(h).every((m) => m.categories.filter((c) => c === 'Seen').length === 1));
  });
});
