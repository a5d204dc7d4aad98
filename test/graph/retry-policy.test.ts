import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exponentialRetry, parseRetryAfter } from '../../src/graph/index.ts';

test('Retry-After in seconds, fractional seconds, or an HTTP date', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter('2.128'), 2128);
  const now = Date.parse('2026-11-22T10:00:00Z');
  assert.equal(parseRetryAfter('Sun, 22 Nov 2026 10:00:05 GMT', now), 5000);
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.equal(parseRetryAfter(null), undefined);
});

test('retries 429/503/504 after Retry-After, bounded in attempts and total wait', () => {
  const policy = exponentialRetry({ maxAttempts: 3, maxTotalWaitMs: 10_000, random: () => 1 });
  assert.equal(policy.delayFor({ attempt: 1, status: 429, retryAfter: '2', waitedMs: 0, idempotent: false }), 2000);
  assert.equal(policy.delayFor({ attempt: 1, status: 503, retryAfter: null, waitedMs: 0, idempotent: true }), 1000);
  assert.equal(policy.delayFor({ attempt: 2, status: 504, retryAfter: null, waitedMs: 0, idempotent: true }), 2000);
  assert.equal(policy.delayFor({ attempt: 3, status: 429, retryAfter: '1', waitedMs: 0, idempotent: true }), undefined, 'attempts are bounded');
  assert.equal(policy.delayFor({ attempt: 1, status: 429, retryAfter: '20', waitedMs: 0, idempotent: true }), undefined, 'total wait is bounded');
  assert.equal(policy.delayFor({ attempt: 1, status: 400, retryAfter: null, waitedMs: 0, idempotent: true }), undefined);
  assert.equal(policy.delayFor({ attempt: 1, status: 500, retryAfter: null, waitedMs: 0, idempotent: true }), undefined);
});

test('a network error is retried only for idempotent methods', () => {
  const policy = exponentialRetry({ random: () => 0.5 });
  assert.equal(policy.delayFor({ attempt: 1, waitedMs: 0, idempotent: true, networkError: true }), 500);
  assert.equal(policy.delayFor({ attempt: 1, waitedMs: 0, idempotent: false, networkError: true }), undefined);
});
