import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestBudget } from '../../src/graph/request-budget.ts';
import { memoryStore } from '../../src/store/index.ts';

test('a process that ends gives back the part of its slice it did not spend: one-request runs never wait for each other', async () => {
  const store = memoryStore(Buffer.alloc(32, 9));
  let now = 1_000_000;
  const waits: number[] = [];
  // 100 per 10 min: each process reserves a slice of 20 (one $batch) at a time, counted for the whole window.
  const settings = { limit: 100, windowMs: 600_000, mailbox: 'alice@contoso.test', store, now: () => now, sleep: async (ms: number) => {
    waits.push(ms);
    now += ms;
  } };
  for (let run = 1; run <= 12; run++) {
    // One `mailbox-agent run` with no new mail: a process of its own, one delta request, then it closes.
    const budget = new RequestBudget(settings);
    await budget.take(1, { method: 'GET', path: '/me/mailFolders/inbox/messages/delta' });
    await budget.close();
    now += 1000;
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
