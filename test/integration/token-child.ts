/**
 * A second (third, …) agent process for the token tests: its own DelegatedAuth on the shared store (STORE_URL:
 * SQLite, Redis or PostgreSQL, with that store's cross-process lock), against the sandbox. Never prints a token; it prints a short hash of the stored refresh token instead.
 *
 *   MODE=race   reads "go" lines on stdin; on each, forces a refresh and answers "ok <how>" or "err <message>".
 *   MODE=loop   forces refreshes in a loop, writing every step ("step <name> <rt-hash>") synchronously to stdout,
 *               so the parent knows where it was when it killed the process. PAUSE_AT=<step> blocks
 *               at that step of the PAUSE_ROUND-th refresh (default 1) until killed.
 *   NO_LOCK=1   replaces the store's lock by a process-local one (the negative control).
 *
 * Env: STORE_URL, DATA_DIR, SANDBOX_URL, SANDBOX_CA (path), CLIENT_ID.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { DelegatedAuth, type RefreshStep } from '../../src/auth/delegated.ts';
import { createLogger } from '../../src/config/logger.ts';
import { createFetch, type FetchLike } from '../../src/config/transport.ts';
import { loadOrCreateTokenKey, openStore, processLock, type Store } from '../../src/store/index.ts';

const env = process.env as Record<string, string>;
const say = (line: string) => writeSync(1, `${line}\n`);
const sandboxUrl = env.SANDBOX_URL!;
const opened = await openStore(env.STORE_URL!, loadOrCreateTokenKey(env.DATA_DIR!));
const store: Store = env.NO_LOCK === '1' ? { ...opened, lock: processLock() } : opened;

const rtHash = async () => {
  const t = await store.getSecret<{ refreshToken: string }>('auth:tokens').catch(() => undefined);
  return t ? createHash('sha256').update(t.refreshToken).digest('hex').slice(0, 12) : 'none';
};

/** Reports (as a hash) each refresh token the provider issues, the moment its answer arrives. */
function peekIssued(inner: FetchLike): FetchLike {
  return async (input, init) => {
    const response = await inner(input, init);
    if (env.MODE === 'loop' && String(input).endsWith('/oauth2/v2.0/token') && response.ok) {
      const body = (await response.clone().json()) as { refresh_token?: string };
      if (body.refresh_token) say(`issued ${createHash('sha256').update(body.refresh_token).digest('hex').slice(0, 12)}`);
    }
    return response;
  };
}

let round = 0;
const pauseAt = env.PAUSE_AT as RefreshStep | undefined;
const pauseRound = Number(env.PAUSE_ROUND ?? '1');
let reused = false;

const auth = new DelegatedAuth({
  clientId: env.CLIENT_ID!,
  tenant: 'common',
  authorityHost: new URL(sandboxUrl),
  redirectUri: new URL('http://localhost:3000/auth/callback'),
  store,
  fetch: peekIssued(createFetch({ origins: [sandboxUrl], caPem: readFileSync(env.SANDBOX_CA!, 'utf8') })),
  log: createLogger({ level: 'silent' }),
  signinUrl: 'http://127.0.0.1:3000/auth/signin',
  trace(step) {
    if (step === 'reused-rotated') reused = true;
    if (env.MODE !== 'loop') return;
    say(`step ${step} ${round}`);
    if (step === pauseAt && round === pauseRound) {
      say(`paused ${step}`);
      // Block the whole process (no event loop turn) until the parent kills it.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    }
  },
});

if (env.MODE === 'race') {
  say('ready');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line !== 'go') continue;
    reused = false;
    try {
      await auth.getAccessToken({ forceRefresh: true });
      say(`ok ${reused ? 'reused' : 'refreshed'}`);
    } catch (error) {
      say(`err ${(error as Error).message.split('\n')[0]}`);
    }
  }
  await store.close();
} else {
  // Discovery and one refresh first, so that the parent's delays fall inside the steady refresh loop.
  if (!pauseAt) await auth.getAccessToken({ forceRefresh: true });
  say(`ready ${await rtHash()}`);
  for (;;) {
    round += 1;
    try {
      await auth.getAccessToken({ forceRefresh: true });
      say(`persisted-hash ${round} ${await rtHash()}`);
    } catch (error) {
      say(`err ${(error as Error).message.split('\n')[0]}`);
      process.exit(1);
    }
  }
}
