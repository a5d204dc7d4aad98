import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { JobLock } from '../../src/jobs/lock.ts';
import { openStore } from '../../src/store/index.ts';

test('a job lock in the shared store: a second holder (another process) is refused until release or expiry', async () => {
  const file = `sqlite://${path.join(mkdtempSync(path.join(tmpdir(), 'ma-lock-')), 'agent.sqlite')}`;
  const a = await openStore(file, Buffer.alloc(32, 1));
  const b = await openStore(file, Buffer.alloc(32, 1));
  let now = 1_000_000;
  const lockA = new JobLock(a, () => now, { ttlMs: 60_000 });
  const lockB = new JobLock(b, () => now, { ttlMs: 60_000 });
  const held = await lockA.acquire('triage', 'run1');
  await assert.rejects(lockB.acquire('triage', 'run2'), (e: Error & { code?: string }) => e.code === 'JOB_BUSY' && /already running in another process/.test(e.message));
  const other = await lockB.acquire('digest', 'run3');
  await other.release();
  await held.release();
  const again = await lockB.acquire('triage', 'run4');
  // A holder that died without releasing: its lock lapses after the TTL.
  now += 61_000;
  const afterExpiry = await lockA.acquire('triage', 'run5');
  await afterExpiry.release();
  await again.release();
  await a.close();
  await b.close();
});
