/**
 * Leaks: a sign-in, runs of the installed binary with access tokens that live 6 s (so refreshes rotate the refresh
 * token), status, explain, the dashboard's pages and the API's answers, with debug logging on. Every secret value
 * seen on the way (each authorization code, each refresh and access token the store held after a step, TOKEN_KEY, the
 * sandbox's private keys) is then looked for, raw and URL-encoded (and a JWT's signature on its own), in every file
 * of the data directory (the store's file included), every log line, every page and every API answer.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { cli } from '../helpers/cli.ts';
import { authorizeAt, hostOf, signIn, startHarness, type Harness } from '../helpers/harness.ts';
import { writeFigures } from './figures.ts';

function filesUnder(dir: string, skip: (p: string) => boolean): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (skip(p)) continue;
    const s = statSync(p);
    if (s.isDirectory()) out.push(...filesUnder(p, skip));
    else if (s.isFile()) out.push(p);
  }
  return out;
}

describe('no token, code or key in plaintext in the store, data/, logs, pages or API answers', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { LOG_LEVEL: 'debug' }, sandboxOptions: { accessTokenLifetimeSec: 6 } });
  });
  after(() => h.close());

  test('after sign-in, refreshes, runs, status, explain, the dashboard and the API', async () => {
    const secrets = new Map<string, string>();
    const add = (what: string, value: string | undefined) => {
      if (value && value.length >= 16) secrets.set(value, what);
    };
    const snapshot = async (step: string) => {
      const t = await h.rt.store.getSecret<{ refreshToken: string; accessToken?: string }>('auth:tokens');
      assert.ok(t, `tokens are stored after ${step}`);
      add(`refresh token after ${step}`, t.refreshToken);
      add(`access token after ${step}`, t.accessToken);
    };
    const places = new Map<string, string>();

    // A sign-in that fails after its code was issued (cancelled is not enough: the code must exist), then one that works.
    const { callback: unused } = await authorizeAt(h, { username: 'alice@contoso.test', password: 'sandbox', action: 'signin' });
    add('authorization code of an abandoned sign-in', unused.searchParams.get('code') ?? undefined);
    const { callback, response } = await signIn(h);
    add('authorization code', callback.searchParams.get('code') ?? undefined);
    places.set('callback answer', `${response.status} ${JSON.stringify(response.headers)} ${response.text}`);
    await snapshot('sign-in');
    // The abandoned code shown back to the agent without its flow: an error page, which must not echo it.
    const stray = await h.http.get(unused.pathname + unused.search).set('Host', hostOf(h)).set('Accept', 'text/html');
    places.set('error page for a stray callback', `${JSON.stringify(stray.headers)} ${stray.text}`);

    for (let i = 1; i <= 3; i++) {
      await sleep(3_200); // the access token is due: the next run refreshes (and Entra rotates the refresh token)
      const run = await cli(['run', 'triage', '--json'], h.env, h.dir);
      assert.equal(run.code, 0, `run ${i}: ${run.stdout.slice(0, 1500)} ${run.stderr.slice(-1500)}`);
      places.set(`run ${i} stdout (the API answer of run --json)`, run.stdout);
      places.set(`run ${i} log (stderr)`, run.stderr);
      await snapshot(`run ${i}`);
    }
    for (const args of [['status', '--json'], ['explain', 'triage', '--last', '3', '--json'], ['doctor']]) {
      const out = await cli(args, h.env, h.dir);
      places.set(`${args.join(' ')} output`, `${out.stdout}\n${out.stderr}`);
      await snapshot(args[0]!);
    }
    await h.rt.auth.getAccessToken({ forceRefresh: true });
    await snapshot('a refresh in the server process');
    for (const url of ['/', '/?job=triage', '/api/status', '/healthz', '/auth/signin', '/nothing-here']) {
      const res = await h.http.get(url).set('Host', hostOf(h));
      places.set(`GET ${url}`, `${JSON.stringify(res.headers)} ${res.text}`);
    }
    const api = await h.http.post('/api/jobs/triage/run').set('Host', hostOf(h));
    places.set('POST /api/jobs/triage/run', `${JSON.stringify(api.headers)} ${api.text}`);
    await snapshot('the API run');

    // Keys: TOKEN_KEY (the store's own key, in data/token.key by design), the sandbox's private keys.
    const tokenKey = readFileSync(path.join(h.dir, 'token.key'), 'utf8').trim();
    add('TOKEN_KEY', tokenKey);
    for (const file of readdirSync(path.join(h.dir, 'sandbox')).filter((f) => f.endsWith('-key.pem'))) {
      const pem = readFileSync(path.join(h.dir, 'sandbox', file), 'utf8');
      add(`sandbox private key ${file}`, pem.split('\n').find((l) => l.length >= 60));
    }
    places.set('the agent process log (in-process server)', h.logs.join('\n'));
    // Every file of the data directory: the store (SQLite and its lock files), logs, anything else the agent wrote.
    // Not: the emulator's own directory (it issues the tokens) and the key file itself.
    const files = filesUnder(h.dir, (p) => p === path.join(h.dir, 'sandbox') || p === path.join(h.dir, 'token.key'));
    assert.ok(files.some((f) => f.endsWith('agent.sqlite')), 'the store file is among them');
    for (const file of files) places.set(`file ${path.relative(h.dir, file)}`, readFileSync(file).toString('latin1'));

    const leaks: string[] = [];
    for (const [value, what] of secrets) {
      const forms = new Set([value, encodeURIComponent(value)]);
      if (value.split('.').length === 3) forms.add(value.split('.')[2]!);
      for (const [where, text] of places) {
        for (const form of forms) if (text.includes(form)) leaks.push(`${what} in ${where}`);
      }
    }
    const refreshTokens = [...secrets.values()].filter((w) => w.startsWith('refresh token')).length;
    writeFigures({
      area: 'leaks', cases: secrets.size, injected: places.size, survived: secrets.size * places.size - leaks.length, lost: 0, doubled: 0, leaked: leaks.length,
      notes: { secrets: [...secrets.values()], places: [...places.keys()], distinctRefreshTokens: new Set([...secrets].filter(([, w]) => w.startsWith('refresh token')).map(([v]) => v)).size, refreshTokenSnapshots: refreshTokens },
    });
    assert.ok(new Set([...secrets].filter(([, w]) => w.startsWith('refresh token')).map(([v]) => v)).size >= 3, 'refresh tokens rotated during the proof');
    assert.deepEqual(leaks, []);
  });
});
