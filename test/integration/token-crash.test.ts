import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';
import { spawnTokenChild } from './token-processes.ts';

/**
 * kill -9 of a process in the middle of a refresh, at every step and at stepped delays, then a refresh
 * from another process with what the store holds.
 *
 * What is guaranteed (and asserted):
 * - The store never goes back: it holds the refresh token of the last refresh that reached the store, or
 *   the one being written at the moment of the kill; never nothing, never an older one.
 * - Entra does not revoke a refresh token when it rotates it (MICROSOFT.md), so with reuse detection OFF
 *   that token always works: every kill point is survived.
 * - With reuse detection ON (a stricter provider), the grant survives every kill point except one window
 *   that no client can close: after the provider rotated the token and before the answer reached the store
 *   ("request"/"response" steps); then the next refresh presents the old token and the grant is revoked,
 *   which the agent reports as needs-signin (AADSTS70008).
 */
describe('kill -9 at any point of a refresh leaves a refresh token that works', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    await signIn(h);
  });
  after(() => h.close());

  const STEPS = ['lock-wait', 'lock-acquired', 'request', 'response', 'persisted', 'released'] as const;
  const storedHash = async () => {
    const t = await h.rt.store.getSecret<{ refreshToken: string }>('auth:tokens');
    return t ? createHash('sha256').update(t.refreshToken).digest('hex').slice(0, 12) : 'none';
  };
  /** Another process (this one, reading only the store) refreshes; returns the error message if it fails. */
  const refreshFromStore = async (): Promise<string | undefined> => {
    try {
      await h.rt.auth.getAccessToken({ forceRefresh: true });
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  };

  async function killPausedAt(step: string, round: number) {
    const child = spawnTokenChild(h, { MODE: 'loop', PAUSE_AT: step, PAUSE_ROUND: String(round) });
    try {
      await child.next(new RegExp(`^paused ${step}$`));
    } finally {
      await child.kill();
    }
  }

  test('reuse detection off (Entra): killed at every step of the first and second refresh, the next refresh works', async () => {
    h.sandbox.admin.setRevokeOnReuse(false);
    for (const round of [1, 2]) {
      for (const step of STEPS) {
        await killPausedAt(step, round);
        assert.equal(await refreshFromStore(), undefined, `killed at ${step} of refresh ${round}`);
      }
    }
    assert.equal((await h.rt.auth.status()).state, 'ready');
  });

  test('reuse detection on: only a kill between the provider\'s rotation and the store write loses the grant', async () => {
    h.sandbox.admin.setRevokeOnReuse(true);
    try {
      for (const step of STEPS) {
        await killPausedAt(step, 1);
        const failure = await refreshFromStore();
        if (step === 'response') {
          assert.match(failure ?? '', /AADSTS70008/, 'the old token was presented again: the provider revoked the grant');
          assert.equal((await h.rt.auth.status()).state, 'needs-signin');
          await signIn(h);
        } else {
          assert.equal(failure, undefined, `killed at ${step}`);
        }
      }
    } finally {
      h.sandbox.admin.setRevokeOnReuse(false);
    }
  });

  test('stepped delays: killed anywhere in a tight refresh loop, the store never goes back and the token works', async () => {
    h.sandbox.admin.setRevokeOnReuse(false);
    for (const delay of [0, 2, 5, 9, 14, 20, 27, 35, 45, 60, 80, 110]) {
      const child = spawnTokenChild(h, { MODE: 'loop' });
      const ready = await child.next(/^ready /);
      await new Promise((r) => setTimeout(r, delay));
      await child.kill();
      const lines = [ready, ...child.lines.slice(child.lines.indexOf(ready) + 1)];
      // The token the last completed refresh stored (or the one there at start), and any issued after it.
      const persistedAt = lines.findLastIndex((l) => /^(ready|persisted-hash) /.test(l));
      const lastPersisted = lines[persistedAt]!.split(' ').at(-1)!;
      const inFlight = lines.slice(persistedAt + 1).filter((l) => l.startsWith('issued ')).map((l) => l.split(' ')[1]!);
      const lastStep = lines.filter((l) => l.startsWith('step ')).at(-1)?.split(' ')[1];
      const rounds = lines.filter((l) => l.startsWith('persisted-hash')).length;
      const now = await storedHash();
      if (process.env.TOKEN_CRASH_DEBUG) console.log(`delay ${delay}: ${rounds} refreshes, last step ${lastStep}, in flight ${inFlight.length}, stored ${now === lastPersisted ? 'last persisted' : 'in flight'}`);
      assert.ok([lastPersisted, ...inFlight].includes(now), `delay ${delay} (after ${rounds} refreshes, last step ${lastStep}): the store holds neither the last persisted token nor the one being written`);
      assert.equal(await refreshFromStore(), undefined, `delay ${delay} (after ${rounds} refreshes, last step ${lastStep})`);
    }
  });
});
