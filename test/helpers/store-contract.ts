import assert from 'node:assert/strict';
import type { Store } from '../../src/store/index.ts';

/** The batch contract every backend keeps; Redis and PostgreSQL run it in backends.test.ts. */
export async function checkGetSetMany(store: Store): Promise<void> {
  await store.set('ledger:b', { done: ['old'] });
  await store.setMany<unknown>([
    { key: 'ledger:a', value: { done: ['markRead:true'] } },
    { key: 'ledger:b', value: { done: ['flag:true'], pending: ['forwardTo:["x@y"]'] } },
    { key: 'ledger:short', value: 1, ttlMs: 150 },
  ]);
  assert.deepEqual(await store.getMany(['ledger:b', 'ledger:none', 'ledger:a', 'ledger:short']), [
    { done: ['flag:true'], pending: ['forwardTo:["x@y"]'] },
    undefined,
    { done: ['markRead:true'] },
    1,
  ]);
  assert.deepEqual(await store.get('ledger:a'), { done: ['markRead:true'] }, 'one key at a time sees the same');
  await new Promise((r) => setTimeout(r, 250));
  assert.deepEqual(await store.getMany(['ledger:short']), [undefined], 'the TTL holds for entries written together');
  assert.deepEqual(await store.getMany([]), []);
  await store.setMany([]);
  // A thousand entries (a delta page's ledger) in one call.
  const many = Array.from({ length: 1000 }, (_, i) => ({ key: `ledger:m${i}`, value: { done: [`n${i}`] } }));
  await store.setMany(many);
  const back = await store.getMany<{ done: string[] }>(many.map((e) => e.key));
  assert.deepEqual(back.map((v) => v?.done[0]), many.map((e) => e.value.done[0]));
}
