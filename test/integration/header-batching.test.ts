/**
 * Issue 13's bench clause as a test: "a rule with `header` costs at most one extra request per 20 candidates
 * (batched)". The same generated inbox is run once with a rule set and once with that set plus a header rule that
 * never matches (so its actions add nothing): the run with it makes exactly its header $batches more, each carrying
 * 20 candidates but the last of a delta page. bench/rules-v2.ts (npm run bench:rules) measures the same at size.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DELTA_PAGE_SIZE } from '../../src/jobs/inbox-rules.ts';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

const ALICE = 'alice@contoso.test';
const MESSAGES = 1500;

const job = (name: string, extra: string) => `  - name: ${name}
    type: inbox-rules
    schedule: "*/5 * * * *"
    backfill: true
    rules:
      - name: urgent
        match: { subjectContains: urgent }
        actions: [ { flag: true } ]
${extra}`;

const JOBS = `jobs:
${job('plain', '')}${job('lists', `      - name: lists
        match: { isRead: false, header: { name: List-Id, contains: no-such-list.example } }
        actions: [ { categorize: [Lists] } ]
`)}`;

describe('a header rule costs one $batch per 20 candidates', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ jobsFile: JOBS });
    await signIn(h);
  });
  after(() => h?.close());

  /** One backfill run of `job` on a freshly generated inbox; the sandbox's log of it. */
  async function run(name: string) {
    h.sandbox.admin.generate(ALICE, MESSAGES, 4242);
    const unread = h.sandbox.admin.messages(ALICE, 'inbox').filter((m) => !m.isRead).length;
    h.sandbox.admin.clearLogs();
    const result = await h.rt.runner.run(name, {});
    assert.equal(result.ok, true, result.error);
    return { result, unread, log: h.sandbox.admin.graphRequests() };
  }

  test('the extra requests are the header $batches, full but for the last of each delta page', async () => {
    const plain = await run('plain');
    const lists = await run('lists');
    assert.equal(lists.result.actions.length, plain.result.actions.length, 'the header rule never matches: the same actions');

    const gets = lists.log.filter((r) => /internetMessageHeaders/.test(r.path));
    assert.ok(gets.length > 0 && gets.every((r) => r.inBatch), 'headers are fetched, always inside $batch');
    const candidates = new Set(gets.map((r) => /\/messages\/([^/?]+)/.exec(r.path)![1]));
    assert.equal(candidates.size, lists.unread, 'every unread message, and only those, reaches the header stage');
    assert.equal(gets.length, candidates.size, 'each candidate asked once');

    const perBatch = new Map<string, number>();
    for (const r of gets) perBatch.set(r.inBatch!.split('#')[0]!, (perBatch.get(r.inBatch!.split('#')[0]!) ?? 0) + 1);
    const pages = Math.ceil(MESSAGES / DELTA_PAGE_SIZE);
    assert.ok(pages > 1, 'the inbox spans several delta pages');
    const bySize = new Map<number, number>();
    for (const n of perBatch.values()) bySize.set(n, (bySize.get(n) ?? 0) + 1);
    const sizes = [...bySize].map(([n, times]) => `${times}× ${n}`).join(', ');
    assert.ok([...perBatch.values()].filter((n) => n < 20).length <= pages, `header batches of fewer than 20 beyond one per delta page: ${sizes}`);
    assert.ok(perBatch.size <= Math.ceil(candidates.size / 20) + pages - 1, `${perBatch.size} header batches for ${candidates.size} candidates`);
    // The whole extra cost of the rule is those batches: no other request was added.
    assert.equal(lists.result.graphRequests - plain.result.graphRequests, perBatch.size);
  });
});
