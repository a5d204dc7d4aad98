import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fireClaims, JobLock } from '../../src/jobs/lock.ts';
import { openStore } from '../../src/store/index.ts';
import { installedPackage } from '../helpers/installed-package.ts';
import { cli } from '../helpers/cli.ts';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

test('a SQLite lock waiter that timed out got STORE_ERROR (SQLITE_BUSY) instead of LOCK_TIMEOUT: a second holder of a job is now refused as JOB_BUSY, naming the holder, until release', async () => {
  const file = `sqlite://${path.join(mkdtempSync(path.join(tmpdir(), 'ma-lock-')), 'agent.sqlite')}`;
  const a = await openStore(file, Buffer.alloc(32, 1));
  const b = await openStore(file, Buffer.alloc(32, 1));
  const lockA = new JobLock(a);
  const lockB = new JobLock(b);
  const held = await lockA.acquire('triage', 'run1');
  await assert.rejects(lockB.acquire('triage', 'run2'), (e: Error & { code?: string }) => e.code === 'JOB_BUSY' && /already running in another process \(.+ pid \d+, since /.test(e.message));
  const other = await lockB.acquire('digest', 'run3');
  await other.release();
  await held.release();
  const again = await lockB.acquire('triage', 'run4');
  await assert.rejects(lockA.acquire('triage', 'run5'), (e: Error & { code?: string }) => e.code === 'JOB_BUSY');
  await again.release();
  await a.close();
  await b.close();
});

/**
 * The bug: two `start` instances sharing a store each ran every scheduled fire, one after the other (the job lock only
 * keeps runs from overlapping; test/proof/instances.proof.ts saw 3 of 7 fires run twice). A fire is now claimed once.
 */
test('two instances sharing a store ran each scheduled fire twice: now one claims the fire, the other skips it', async () => {
  const file = `sqlite://${path.join(mkdtempSync(path.join(tmpdir(), 'ma-fire-')), 'agent.sqlite')}`;
  const a = await openStore(file, Buffer.alloc(32, 1));
  const b = await openStore(file, Buffer.alloc(32, 1));
  try {
    const [first, second] = await Promise.all([fireClaims(a).shouldRun('triage:2026-12-01T10:05:00.000Z', 60_000), fireClaims(b).shouldRun('triage:2026-12-01T10:05:00.000Z', 60_000)]);
    assert.deepEqual([first, second].sort(), [false, true], 'exactly one instance runs the fire');
    assert.equal(await fireClaims(b).shouldRun('triage:2026-12-01T10:10:00.000Z', 60_000), true, 'the next fire is claimed afresh');
    assert.equal(await fireClaims(a).shouldRun('triage:2026-12-01T10:10:00.000Z', 60_000), false);
  } finally {
    await a.close();
    await b.close();
  }
});

/**
 * The bug: the job lock was a 10-minute lease record in the store, so a `run` killed with -9 kept the job for up to
 * ten minutes and every run meanwhile was refused as busy. Now the job lock is the store's own lock, which the
 * kernel frees with the dead process (SQLite).
 */
describe('kill -9 of a run holding the job lock: the next run starts at once', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      jobsFile: `jobs:
  - name: sweep
    type: inbox-rules
    schedule: "0 3 * * *"
    folder: inbox
    backfill: true
    rules:
      - name: everything
        match: { subjectContains: "e" }
        actions: [ { flag: true } ]
`,
    });
    await signIn(h);
    await installedPackage();
  });
  after(() => h.close());

  test('a run killed with -9 while holding the lock does not make the next run busy', async () => {
    // Slow Graph, so the first run is surely still holding the job when it is killed.
    h.sandbox.admin.setLatency(400);
    const child = spawn((await installedPackage()).bin, ['run', 'sweep', '--json'], {
      cwd: h.dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...h.env }, stdio: 'ignore', detached: true,
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      // The holder record is written right after the lock is taken; Graph requests show the run is under way.
      for (let i = 0; ; i++) {
        const holder = await h.rt.store.get<{ holder: string }>('lock:sweep');
        if (holder && h.sandbox.admin.graphRequests().length > 0) break;
        assert.ok(i < 600, 'the run took the job lock');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      process.kill(-child.pid!, 'SIGKILL');
      await exited;
    }
    h.sandbox.admin.setLatency(0);
    const next = await cli(['run', 'sweep', '--json'], h.env, h.dir);
    assert.equal(next.code, 0, `${next.stdout}${next.stderr}`);
    const result = JSON.parse(next.stdout);
    assert.equal(result.ok, true, result.error);
    assert.ok(h.sandbox.admin.messages('alice@contoso.test', 'inbox').filter((m) => /e/i.test(m.subject)).every((m) => m.flagStatus === 'flagged'), 'the second run did the work');
    // And while a live run holds it, another is refused with who holds it.
    const held = await new JobLock(h.rt.store).acquire('sweep', 'test');
    try {
      const busy = await cli(['run', 'sweep'], h.env, h.dir);
      assert.equal(busy.code, 1);
      assert.match(busy.stderr, /already running in another process \(.+ pid \d+/);
    } finally {
      await held.release();
    }
  });
});
