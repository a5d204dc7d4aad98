import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exponentialRetry, mayHaveRun, mayResend, parseRetryAfter } from '../../src/graph/index.ts';

const status = (s: number) => ({ kind: 'status' as const, status: s });

test('Retry-After in seconds, fractional seconds, or an HTTP date', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter('2.128'), 2128);
  const now = Date.parse('2026-11-22T10:00:00Z');
  assert.equal(parseRetryAfter('Sun, 22 Nov 2026 10:00:05 GMT', now), 5000);
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.equal(parseRetryAfter(null), undefined);
});

test('retries 429/5xx after Retry-After, bounded in attempts and total wait', () => {
  const policy = exponentialRetry({ maxAttempts: 3, maxTotalWaitMs: 10_000, random: () => 1 });
  assert.equal(policy.delayFor({ attempt: 1, failure: status(429), retryAfter: '2', waitedMs: 0, idempotent: false }), 2000);
  assert.equal(policy.delayFor({ attempt: 1, failure: status(503), retryAfter: null, waitedMs: 0, idempotent: true }), 1000);
  assert.equal(policy.delayFor({ attempt: 2, failure: status(504), retryAfter: null, waitedMs: 0, idempotent: true }), 2000);
  assert.equal(policy.delayFor({ attempt: 1, failure: status(500), retryAfter: null, waitedMs: 0, idempotent: true }), 1000, 'a 500 on an idempotent request is retried like a 503');
  assert.equal(policy.delayFor({ attempt: 3, failure: status(429), retryAfter: '1', waitedMs: 0, idempotent: true }), undefined, 'attempts are bounded');
  assert.equal(policy.delayFor({ attempt: 1, failure: status(429), retryAfter: '20', waitedMs: 0, idempotent: true }), undefined, 'total wait is bounded');
  assert.equal(policy.delayFor({ attempt: 1, failure: status(400), retryAfter: null, waitedMs: 0, idempotent: true }), undefined);
});

test('a write that must not happen twice is re-sent only when the answer proves it did not run', () => {
  const policy = exponentialRetry({ random: () => 0.5 });
  for (const s of [429, 503]) assert.ok(policy.delayFor({ attempt: 1, failure: status(s), waitedMs: 0, idempotent: false }) !== undefined, `${s}`);
  for (const s of [500, 502, 504]) {
    assert.equal(policy.delayFor({ attempt: 1, failure: status(s), waitedMs: 0, idempotent: false }), undefined, `${s}`);
    assert.equal(mayHaveRun(status(s)), 'unknown', `${s}`);
  }
  assert.equal(policy.delayFor({ attempt: 1, failure: { kind: 'network', sent: true }, waitedMs: 0, idempotent: false }), undefined, 'a reset or timeout once sent');
  assert.equal(policy.delayFor({ attempt: 1, failure: { kind: 'network', sent: false }, waitedMs: 0, idempotent: false }), 500, 'a connection never made');
  assert.equal(policy.delayFor({ attempt: 1, failure: { kind: 'network', sent: true }, waitedMs: 0, idempotent: true }), 500);
  assert.equal(mayResend({ kind: 'garbage' }, true), true, 'a 200 that is not JSON, idempotent');
  assert.equal(mayResend({ kind: 'garbage' }, false), false);
  assert.equal(mayHaveRun({ kind: 'garbage' }), true);
  assert.equal(mayHaveRun(status(429)), false);
  assert.equal(mayHaveRun(status(503)), false);
});
