import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { getEventListeners } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/config/logger.ts';
import { GraphClient } from '../../src/graph/client.ts';
import { exponentialRetry } from '../../src/graph/index.ts';
import { GraphThrottled, RequestBudget } from '../../src/graph/request-budget.ts';
import { memoryStore, openStore, type Store } from '../../src/store/index.ts';
import { startPostgres, startRedis, type TestServer } from '../helpers/servers.ts';

const KEY = Buffer.alloc(32, 3);
const silent = () => createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, done) => done() }) as never });

/**
 * Virtual time for `workers` concurrent senders: the clock moves only when every one of them is asleep,
 * straight to the earliest wake-up. A test of pacing then runs in milliseconds and sends at exact instants.
 */
function virtualTime(workers: number) {
  let now = 0;
  let active = workers;
  const timers: { at: number; wake: () => void }[] = [];
  const advance = () => {
    if (timers.length === 0 || timers.length < active) return;
    timers.sort((a, b) => a.at - b.at);
    const t = timers.shift()!;
    now = Math.max(now, t.at);
    t.wake();
  };
  return {
    now: () => now,
    sleep: (ms: number) => new Promise<void>((wake) => {
      timers.push({ at: now + ms, wake });
      advance();
    }),
    done: () => {
      active--;
      advance();
    },
  };
}

/** The most requests found in any window of `windowMs` (a request counts for `windowMs` after it is sent, as Graph counts). */
function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[j]! <= sorted[i]! - windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

async function sendAll(budget: RequestBudget, clock: { now: () => number }, sizes: number[], sent: number[]): Promise<void> {
  for (const n of sizes) {
    await budget.take(n, { method: 'GET', path: '/me/messages' });
    for (let k = 0; k < n; k++) sent.push(clock.now());
  }
}

test('sliding window: 1,000 requests under 100 per 6 s never put more than 100 in any 6 s, and finish close to the floor', async () => {
  const clock = virtualTime(1);
  const budget = new RequestBudget({ limit: 100, windowMs: 6000, store: memoryStore(KEY), mailbox: 'alice@contoso.test', now: clock.now, sleep: clock.sleep });
  const sent: number[] = [];
  await sendAll(budget, clock, Array.from({ length: 1000 }, () => 1), sent);
  clock.done();
  assert.equal(sent.length, 1000);
  assert.ok(busiestWindow(sent, 6000) <= 100, `busiest window ${busiestWindow(sent, 6000)}`);
  // The floor: the last 100 may go once the first 900 have been counted for 9 windows (54 s).
  const end = Math.max(...sent);
  assert.ok(end >= 54_000 && end <= 54_000 * 1.1, `last request at ${end} ms`);
  // One store round trip per slice, not per request.
  assert.ok(budget.reservations < 1000 / 10, `${budget.reservations} reservations`);
});

test('a $batch counts as its sub-requests: 40 per window lets two batches of 20 through, the third waits a window', async () => {
  const clock = virtualTime(1);
  const budget = new RequestBudget({ limit: 40, windowMs: 1000, store: memoryStore(KEY), mailbox: 'alice@contoso.test', now: clock.now, sleep: clock.sleep });
  const sentAt: number[] = [];
  const graph = new GraphClient({
    graphUrl: new URL('https://graph.example.test'),
    tokens: { mode: 'delegated', getAccessToken: async () => 'token', status: async () => ({ mode: 'delegated', state: 'ready', account: null }) },
    fetch: (async (_input: URL | string, init?: RequestInit) => {
      sentAt.push(clock.now());
      const { requests } = JSON.parse(String(init!.body)) as { requests: { id: string }[] };
      return Response.json({ responses: requests.map((r) => ({ id: r.id, status: 204 })) });
    }) as never,
    log: silent(),
    budget,
  });
  const results = await graph.batch(Array.from({ length: 60 }, (_, i) => ({ method: 'PATCH' as const, url: `/me/messages/m${i}`, body: { isRead: true } })));
  clock.done();
  assert.equal(results.filter((r) => r.status === 204).length, 60);
  assert.equal(sentAt.length, 3);
  assert.deepEqual(sentAt.slice(0, 2), [0, 0]);
  assert.ok(sentAt[2]! >= 1000, `the third batch went at ${sentAt[2]} ms, inside the first window`);
});

async function twoProcesses(stores: [Store, Store]) {
  const clock = virtualTime(2);
  const settings = { limit: 100, windowMs: 6000, mailbox: 'alice@contoso.test', now: clock.now, sleep: clock.sleep };
  const a = new RequestBudget({ ...settings, store: stores[0] });
  const b = new RequestBudget({ ...settings, store: stores[1] });
  const sentA: number[] = [];
  const sentB: number[] = [];
  // One process sends single requests, the other $batches of 20.
  await Promise.all([
    sendAll(a, clock, Array.from({ length: 300 }, () => 1), sentA).finally(clock.done),
    sendAll(b, clock, Array.from({ length: 15 }, () => 20), sentB).finally(clock.done),
  ]);
  const all = [...sentA, ...sentB];
  assert.equal(all.length, 600);
  assert.ok(busiestWindow(all, 6000) <= 100, `busiest window of the two together: ${busiestWindow(all, 6000)}`);
  // Together they are paced as one: 600 at 100 per 6 s end near 30 s, not near 0 (each alone) nor 60 s.
  const end = Math.max(...all);
  assert.ok(end >= 30_000 && end <= 30_000 * 1.15, `last request at ${end} ms`);
}

test('two processes sharing a store share one budget (in-memory store, one lock)', async () => {
  const store = memoryStore(KEY);
  await twoProcesses([store, store]);
});

test('two processes sharing a SQLite file share one budget (two connections, the file lock)', { timeout: 120_000 }, async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'ma-budget-')), 'agent.sqlite');
  const one = await openStore(`sqlite://${file}`, KEY);
  const two = await openStore(`sqlite://${file}`, KEY);
  try {
    await twoProcesses([one, two]);
  } finally {
    await one.close();
    await two.close();
  }
});

describe('two processes sharing a Redis or PostgreSQL store share one budget (real throwaway servers)', () => {
  let redis: TestServer;
  let postgres: TestServer;
  before(async () => {
    [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  });
  after(async () => {
    await Promise.all([redis?.stop(), postgres?.stop()]);
  });
  for (const backend of ['redis', 'postgresql'] as const) {
    test(backend, { timeout: 120_000 }, async () => {
      const url = backend === 'redis' ? redis.url : postgres.url;
      const one = await openStore(url, KEY);
      const two = await openStore(url, KEY);
      try {
        await twoProcesses([one, two]);
      } finally {
        await one.close();
        await two.close();
      }
    });
  }
});

test('a pause recorded by one process stops the other until it ends', async () => {
  const store = memoryStore(KEY);
  let now = 1_000_000;
  const settings = { limit: 100, windowMs: 6000, mailbox: 'alice@contoso.test', now: () => now, store };
  const a = new RequestBudget(settings);
  const b = new RequestBudget(settings);
  await b.take(1, { method: 'GET', path: '/me' });
  await a.pause(now + 300_000, 'Graph answered 429 TooManyRequests with Retry-After 300');
  now += 10_000; // b's slice has lapsed: its next take asks the store, which says paused
  const error = await b.take(1, { method: 'GET', path: '/me/messages' }).catch((e: unknown) => e);
  assert.ok(error instanceof GraphThrottled, String(error));
  assert.equal(error.until.getTime(), 1_000_000 + 300_000);
  assert.equal(error.transient, true);
  now = 1_000_000 + 300_000;
  await b.take(1, { method: 'GET', path: '/me/messages' });
});

test('a 429 with a Retry-After of minutes pauses the mailbox: no more requests until then, and the error says when', async () => {
  let now = 5_000_000;
  const seen: string[] = [];
  const script: Response[] = [
    Response.json({ error: { code: 'TooManyRequests', message: 'Please retry again later.' } }, { status: 429, headers: { 'retry-after': '300' } }),
    Response.json({ responses: [{ id: '0', status: 429, headers: { 'Retry-After': '600' }, body: { error: { code: 'TooManyRequests', message: 'later' } } }] }),
    Response.json({ value: [] }),
  ];
  const graph = new GraphClient({
    graphUrl: new URL('https://graph.example.test'),
    tokens: { mode: 'delegated', getAccessToken: async () => 'token', status: async () => ({ mode: 'delegated', state: 'ready', account: null }) },
    fetch: (async (input: URL | string) => {
      seen.push(new URL(String(input)).pathname);
      return script.shift()!;
    }) as never,
    log: silent(),
    retry: exponentialRetry({ baseMs: 1, capMs: 2 }),
    now: () => now,
  }).scoped();
  const first = await graph.get('/me/messages').catch((e: unknown) => e);
  assert.ok(first instanceof GraphThrottled, String(first));
  assert.equal(first.until.getTime(), 5_000_000 + 300_000);
  assert.match(first.message, /paused until 1970-01-01T01:28:20.000Z/);
  // Paused: refused at once, nothing sent (the scoped clients of one mailbox share the pause).
  const again = await graph.get('/me/messages').catch((e: unknown) => e);
  assert.ok(again instanceof GraphThrottled);
  assert.equal(seen.length, 1);
  now += 300_000;
  // A batched request refused with a long Retry-After pauses the mailbox too, and is reported not run.
  const [r] = await graph.batch([{ method: 'POST', url: '/me/messages/m1/forward', body: { toRecipients: [] } }]);
  assert.ok(r!.error instanceof GraphThrottled);
  assert.equal(r!.executed, false);
  assert.equal((r!.error as GraphThrottled).until.getTime(), now + 600_000);
  assert.equal(seen.length, 2);
  now += 600_000;
  assert.deepEqual((await graph.get('/me/messages')).body, { value: [] });
});

test('waiting for the budget leaves no abort listener behind on the run\'s signal (a long paced run waits thousands of times)', async () => {
  const budget = new RequestBudget({ limit: 20, windowMs: 30, useMs: 5, slackMs: 1, store: memoryStore(KEY), mailbox: 'alice@contoso.test' });
  const signal = new AbortController().signal;
  for (let i = 0; i < 12; i++) await budget.take(20, { method: 'POST', path: '/$batch', signal });
  assert.ok(budget.reservations > 12, 'the budget did make the takes wait');
  assert.equal(getEventListeners(signal, 'abort').length, 0);
});
