import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startServer } from '../../src/cli/server.ts';
import { loadConfig } from '../../src/config/index.ts';
import { Scheduler } from '../../src/jobs/index.ts';
import { logCapture, parseForm, REPO, signIn, startHarness, type Harness } from '../helpers/harness.ts';
import { freePort } from '../helpers/server.ts';

const EVERY_SECOND = `jobs:
  - name: tag-all
    type: inbox-rules
    schedule: "* * * * * *"
    backfill: true
    rules:
      - name: everything
        match: { olderThanDays: 0 }
        actions: [ { categorize: [Seen] } ]
`;

describe('graceful shutdown: a running job finishes its page, then stops; the next run goes on without acting twice', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ jobsFile: EVERY_SECOND });
    await signIn(h);
    // 2,500 messages: the job walks three delta pages of 1,000.
    h.sandbox.admin.generate('alice@contoso.test', 2500, 7);
  });
  after(() => h.close());

  test('a stop request between pages ends the run there, with a clear reason, and keeps its progress', async () => {
    const stop = new AbortController();
    let pages = 0;
    const first = await h.rt.runner.run('tag-all', {
      stop: stop.signal,
      onProgress: () => {
        pages++;
        stop.abort();
      },
    });
    assert.equal(pages, 1, 'exactly one page was completed');
    assert.equal(first.ok, false);
    assert.match(first.error!, /Stopped between two pages because the agent is shutting down\. Nothing to do: the next run continues where this one stopped\./);
    const firstTagged = first.actions.filter((a) => a.result === 'done').length;
    assert.ok(firstTagged > 0 && firstTagged <= 1000, `the first page's actions all committed (${firstTagged})`);

    const second = await h.rt.runner.run('tag-all');
    assert.equal(second.ok, true, second.error);
    const tagged = h.sandbox.admin.messages('alice@contoso.test', 'inbox').filter((m) => m.categories.includes('Seen'));
    assert.equal(tagged.length, 2500, 'every message tagged once the second run finished');
    const doneIds = [...first.actions, ...second.actions].filter((a) => a.result === 'done').map((a) => a.messageId);
    assert.equal(new Set(doneIds).size, doneIds.length, 'no message was acted on twice');
  });

  test('Scheduler.stop() lets the scheduled run reach its safe point and reports a clean stop', async () => {
    // A new mailbox has new folder ids: forget the job's cached folder id, as a run would after a 404.
    h.sandbox.admin.generate('alice@contoso.test', 2500, 8);
    await h.rt.store.delete('job:tag-all:folder:inbox');
    const scheduler = new Scheduler(h.rt.runner, h.rt.log);
    scheduler.start();
    for (let i = 0; i < 300 && !scheduler.busy; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(scheduler.busy, 'the every-second schedule fired');
    const clean = await scheduler.stop(20_000);
    assert.equal(clean, true);
    assert.equal(scheduler.busy, false);
    const last = await h.rt.runner.lastRun('tag-all');
    assert.ok(last, 'the run was recorded');
    assert.ok(last.ok || /shutting down/.test(last.error ?? ''), JSON.stringify(last));
  });
});

/** A job that waits until the test lets it go, and records whether it was asked to stop meanwhile. */
const HOLD_JOB = `export default {
  async run(ctx) {
    const gate = globalThis.shutdownTestGate;
    gate.started();
    await gate.released;
    gate.sawStop = ctx.stop.aborted;
  },
};
`;

interface Gate { started: () => void; released: Promise<void>; sawStop?: boolean }

/** A raw keep-alive connection: what was received, and whether the server closed it. */
function rawConnection(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (received += chunk));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => undefined);
  return {
    socket,
    closed,
    get received() {
      return received;
    },
    connected: new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject)),
  };
}

/** Splits what a connection received into responses: status line and headers (lower-cased names). */
function responsesIn(text: string): { status: number; headers: Record<string, string> }[] {
  return text.split(/(?=HTTP\/1\.1 \d{3} )/).filter(Boolean).map((raw) => {
    const [head] = raw.split('\r\n\r\n');
    const [statusLine, ...lines] = head!.split('\r\n');
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    return { status: Number(statusLine!.split(' ')[1]), headers };
  });
}

describe('shutdown stops answering at once: the listener closes, idle connections close, a late request gets 503', () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ma-shutdown-'));
    writeFileSync(path.join(dir, 'hold.mjs'), HOLD_JOB);
    h = await startHarness({ jobsFile: `jobs:\n  - name: hold\n    module: ${JSON.stringify(path.join(dir, 'hold.mjs'))}\n    schedule: "0 0 1 1 *"\n` });
  });
  after(() => h.close());

  test('a request on a keep-alive connection after stop began gets 503 + Connection: close and never completes a sign-in; the job in flight still finishes', async () => {
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const config = loadConfig({ ...h.env, HOST: '127.0.0.1', PORT: String(port), MS_REDIRECT_URI: `${origin}/auth/callback` }, { envFile: false, cwd: h.dir });
    const { lines, log } = logCapture();
    const { stop } = await startServer(config, log, { installSignalHandlers: false, shutdownGraceMs: 20_000 });

    // A sign-in waiting for its callback: the browser is at the identity provider when the agent is stopped.
    const start = await fetch(`${origin}/auth/signin`, { redirect: 'manual' });
    assert.equal(start.status, 302);
    const flowCookie = start.headers.getSetCookie().map((c) => c.split(';')[0]!).find((c) => c.startsWith('ma_signin='))!;
    const page = await h.fetch(start.headers.get('location')!);
    const form = parseForm(await page.text());
    const answered = await h.fetch(new URL(form.action, start.headers.get('location')!), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form.fields, username: 'alice@contoso.test', password: 'sandbox', action: 'signin' }).toString(),
      redirect: 'manual',
    });
    const callback = new URL(answered.headers.get('location')!);
    assert.equal(callback.origin, origin);

    // An idle keep-alive connection, and one busy with a job run.
    const idle = rawConnection(port);
    await idle.connected;
    idle.socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    while (!idle.received.includes('{"ok":true}')) await new Promise((r) => setTimeout(r, 5));
    assert.match(idle.received, /Connection: keep-alive/i);

    let release!: () => void;
    let started!: () => void;
    const jobStarted = new Promise<void>((resolve) => (started = resolve));
    const gate: Gate = { started, released: new Promise<void>((resolve) => (release = resolve)) };
    (globalThis as { shutdownTestGate?: Gate }).shutdownTestGate = gate;
    const busy = rawConnection(port);
    await busy.connected;
    busy.socket.write(`POST /api/jobs/hold/run HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 0\r\n\r\n`);
    await jobStarted;

    const stopped = stop();
    // The listener refuses new connections at once.
    await assert.rejects(rawConnection(port).connected, /ECONNREFUSED/);
    // The idle keep-alive connection is closed at once, while the job is still running.
    await idle.closed;

    // The browser comes back with the code on the connection it already has open.
    busy.socket.write(`GET ${callback.pathname}${callback.search} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${flowCookie}\r\nAccept: text/html\r\n\r\n`);
    for (let i = 0; i < 300 && !lines.some((l) => l.includes('refused a request: shutting down')); i++) await new Promise((r) => setTimeout(r, 10));
    release();
    await busy.closed;
    await stopped;

    const [run, late] = responsesIn(busy.received);
    assert.equal(late?.status, 503, busy.received);
    assert.equal(late?.headers.connection, 'close');
    assert.equal((await h.rt.auth.status()).state, 'signed-out', 'the sign-in was not completed');
    assert.equal(run?.status, 200, busy.received);
    assert.equal(gate.sawStop, true, 'the job in flight was asked to stop at its next safe point, and finished');
    assert.ok(!lines.some((l) => l.includes(callback.searchParams.get('code')!)), 'the code is never logged');
  });

  test('SIGTERM: the listener closes, an idle keep-alive connection is closed, and the process exits 0', async () => {
    const port = await freePort();
    const script = path.join(dir, 'start.mts');
    const src = (file: string) => JSON.stringify(path.join(REPO, 'src', file));
    writeFileSync(script, `import { loadConfig } from ${src('config/index.ts')};
import { createLogger } from ${src('config/logger.ts')};
import { startServer } from ${src('cli/server.ts')};
await startServer(loadConfig(process.env, { envFile: false }), createLogger({ level: 'info' }));
`);
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: REPO,
      env: { ...process.env, ...h.env, HOST: '127.0.0.1', PORT: String(port), MS_REDIRECT_URI: `http://127.0.0.1:${port}/auth/callback`, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const answers = () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
    for (let i = 0; i < 1500 && child.exitCode === null && !(await answers()); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(await answers(), stderr);

    const idle = rawConnection(port);
    await idle.connected;
    idle.socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    while (!idle.received.includes('{"ok":true}')) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGTERM');
    await idle.closed;
    assert.equal(await exited, 0, stderr);
    await assert.rejects(rawConnection(port).connected, /ECONNREFUSED/);
    assert.match(stderr, /shutting down/);
  });
});
