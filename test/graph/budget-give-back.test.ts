import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestBudget } from '../../src/graph/request-budget.ts';
import { memoryStore } from '../../src/store/index.ts';

/** A budget shared through one memory store on a clock the test moves; `waits` lists every wait a take made. */
function simulated(limit: number) {
  const store = memoryStore(Buffer.alloc(32, 9));
  let now = 1_000_000;
  const waits: number[] = [];
  const settings = { limit, windowMs: 600_000, mailbox: 'alice@contoso.test', store, now: () => now, sleep: async (ms: number) => {
    waits.push(ms);
    now += ms;
  } };
  return { store, waits, settings, later: (ms: number) => void (now += ms) };
}

test('a process that ends gives back the part of its slice it did not spend: one-request runs never wait for each other', async () => {
  // 100 per 10 min: each process reserves a slice of 20 (one $batch) at a time, counted for the whole window.
  const { store, waits, settings, later } = simulated(100);
  for (let run = 1; run <= 12; run++) {
    // One `mailbox-agent run` with no new mail: a process of its own, one delta request, then it closes.
    const budget = new RequestBudget(settings);
    await budget.take(1, { method: 'GET', path: '/me/mailFolders/inbox/messages/delta' });
    await budget.close();
    later(1000);
  }
  assert.deepEqual(waits, [], 'a run waited for slices that earlier runs reserved and never spent');
  const record = await store.get<{ grants: { n: number }[] }>('graph-budget:alice@contoso.test');
  assert.deepEqual(record?.grants.map((g) => g.n), Array.from({ length: 12 }, () => 1), 'each run still counts what it sent');
});

test('close after nothing was taken, or after the slice was spent, writes nothing', async () => {
  const store = memoryStore(Buffer.alloc(32, 9));
  const budget = new RequestBudget({ limit: 20, windowMs: 60_000, mailbox: 'alice@contoso.test', store });
  await budget.close();
  assert.equal(await store.get('graph-budget:alice@contoso.test'), undefined);
  await budget.take(20, { method: 'POST', path: '/$batch' });
  await budget.close();
  const record = await store.get<{ grants: { n: number }[] }>('graph-budget:alice@contoso.test');
  assert.deepEqual(record?.grants.map((g) => g.n), [20]);
});

test('runs killed without close (kill -9) hold one $batch each, not limit / 40: forty of them in a window leave the mailbox room', async () => {
  // Outlook's own budget: before, each process's first slice was 250 (limit / 40), so 40 killed runs held it all.
  const { store, waits, settings, later } = simulated(10_000);
  for (let run = 1; run <= 45; run++) {
    const budget = new RequestBudget(settings);
    for (let i = 0; i < 5; i++) await budget.take(1, { method: 'PATCH', path: `/me/messages/${run}-${i}` });
    // killed here: no close()
    later(1000);
  }
  const next = new RequestBudget(settings);
  await next.take(20, { method: 'POST', path: '/$batch' });
  assert.deepEqual(waits, [], 'the run after the killed ones waited for slices they never spent');
  const record = await store.get<{ grants: { n: number }[] }>('graph-budget:alice@contoso.test');
  assert.ok(record!.grants.every((g) => g.n <= 20), `a killed run held ${Math.max(...record!.grants.map((g) => g.n))}`);
});

test('a busy process grows its slices up to limit / 40 by doubling what it spent, so a backfill still needs few store round trips', async () => {
  const { store, settings } = simulated(10_000);
  const budget = new RequestBudget(settings);
  const take = () => budget.take(20, { method: 'POST', path: '/$batch' });
  for (let i = 0; i < 16; i++) await take();
  const record = await store.get<{ grants: { id: string; n: number }[] }>('graph-budget:alice@contoso.test');
  // 15 batches filled slices of 20, 40, 80 and 160; the 16th opened the next one, of 250 (limit / 40).
  assert.deepEqual(record!.grants.map((g) => g.n), [20, 40, 80, 160, 250]);
  for (let i = 16; i < 2_000; i++) await take();
  // One per 240 requests once grown (12 batches of 20 fit a slice of 250), plus the rounds spent waiting for the window.
  assert.ok(budget.reservations < 200, `${budget.reservations} reservations for 40,000 requests`);
});
