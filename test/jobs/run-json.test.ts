import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runResultJson } from '../../src/jobs/run-json.ts';
import type { JobRunResult } from '../../src/jobs/runner.ts';

const result = (actions: number, extra: Partial<JobRunResult> = {}): JobRunResult => ({
  job: 'triage "a"', ok: true, dryRun: false, examined: actions * 2,
  actions: Array.from({ length: actions }, (_, i) => ({ messageId: `AAMk${i}`, rule: 'newsletters', action: i % 2 ? 'moveTo' : 'markRead', value: i % 2 ? 'Newsletters' : true, subject: `Issue ${i} "quoted" \u2028`, result: 'done' as const })),
  graphRequests: 12, startedAt: '2026-12-02T01:00:00.000Z', finishedAt: '2026-12-02T01:00:30.000Z', ...extra,
});

/** What `run --json` printed before: the whole line at once. */
const whole = (r: JobRunResult) => {
  const { errorCode: _c, startedAt: _s, finishedAt: _f, ...rest } = r;
  return `${JSON.stringify({ ...rest, startedAt: r.startedAt, finishedAt: r.finishedAt })}\n`;
};

test('run --json in pieces is the same line as JSON.stringify of the result, keys in the same order, errorCode left out', () => {
  for (const r of [result(0), result(1), result(999), result(1000), result(1001), result(2500, { ok: false, error: 'x "actions":[]', errorCode: 'GRAPH_ERROR', deferred: { until: 'u', reason: 'r' } })]) {
    assert.equal([...runResultJson(r)].join(''), whole(r));
  }
});

test('a run with ~38,000 actions is written in pieces under V8\'s large-object size (128 KB), never as one ~10 MB string', () => {
  const big = result(38_000);
  const pieces = [...runResultJson(big)];
  assert.equal(pieces.join(''), whole(big));
  assert.ok(pieces.length >= 380, `${pieces.length} pieces`);
  assert.ok(Math.max(...pieces.map((p) => p.length)) < 64_000, `largest piece ${Math.max(...pieces.map((p) => p.length))} characters`);
});
