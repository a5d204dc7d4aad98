/**
 * What a person waits for at the command line, measured on the INSTALLED binary as a whole process: the tarball
 * `npm pack` makes, installed with `npm install --omit=dev` (test/helpers/installed-package.ts), started through
 * its node_modules/.bin/mailbox-agent symlink. Each command runs `--runs` times (default 7) after one warm-up,
 * alternating with `node -e 0` (the floor of any Node program on this machine), and is reported as median, min and
 * max wall time, the median of the per-pair ratios to `node -e 0`, and the median peak RSS (bench/peak-rss.mjs,
 * given as NODE_OPTIONS=--import so the binary starts exactly as a shell starts it).
 *
 * Alone: `npm run bench:cli [-- --runs 7]` (starts its own sandbox); `npm run bench` runs it too (--startup yes).
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { installedPackage } from '../test/helpers/installed-package.ts';
import type { FetchLike } from '../src/config/transport.ts';
import { admin, USER, type SandboxInfo } from './common.ts';
import { signedInAgent } from './cli-run.ts';

const here = path.dirname(new URL(import.meta.url).pathname);
const PEAK_RSS = path.join(here, 'peak-rss.mjs');

export interface Timed {
  wallMs: number;
  peakRssMb: number;
  code: number | null;
  stdout: string;
}

/** One whole process: from spawn to exit, with its own peak RSS. */
export async function timeProcess(command: string, args: string[], env: Record<string, string>, cwd: string): Promise<Timed> {
  const rssFile = path.join(cwd, `.peak-rss-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const start = performance.now();
  const child = spawn(command, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, NODE_OPTIONS: `--import=${PEAK_RSS}`, MA_PEAK_RSS_FILE: rssFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const wallMs = performance.now() - start;
  let peakRssMb = NaN;
  try {
    peakRssMb = Math.round(Number(readFileSync(rssFile, 'utf8').split(' ')[0]) / 1024);
    rmSync(rssFile, { force: true });
  } catch {
    throw new Error(`${command} ${args.join(' ')} wrote no peak RSS (exit ${code}): ${stderr}`);
  }
  return { wallMs, peakRssMb, code, stdout };
}

export interface Row {
  name: string;
  target: string;
  wall: number[];
  ratios: number[];
  rss: number[];
  note?: string;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Runs `measure` `runs` times after a warm-up, each time paired with `node -e 0`. */
async function paired(runs: number, measure: () => Promise<{ wallMs: number; peakRssMb: number }>, cwd: string): Promise<Pick<Row, 'wall' | 'ratios' | 'rss'>> {
  await measure();
  const wall: number[] = [];
  const ratios: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < runs; i++) {
    const a = await measure();
    const b = await timeProcess(process.execPath, ['-e', '0'], {}, cwd);
    wall.push(a.wallMs);
    rss.push(a.peakRssMb);
    ratios.push(a.wallMs / b.wallMs);
  }
  return { wall, ratios, rss };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `mailbox-agent start` until GET /healthz answers 200 (polled every 10 ms), then SIGTERM. */
async function startToHealthz(bin: string, env: Record<string, string>, cwd: string): Promise<{ wallMs: number; peakRssMb: number }> {
  const port = await freePort();
  const rssFile = path.join(cwd, `.peak-rss-start-${port}`);
  const start = performance.now();
  const child = spawn(bin, ['start'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, PORT: String(port), NODE_OPTIONS: `--import=${PEAK_RSS}`, MA_PEAK_RSS_FILE: rssFile },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let exited = false;
  const closed = new Promise<void>((resolve) => child.on('close', () => { exited = true; resolve(); }));
  let wallMs = 0;
  for (;;) {
    if (exited) throw new Error(`start exited before /healthz answered: ${stderr}`);
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
    if (ok) {
      wallMs = performance.now() - start;
      break;
    }
    if (performance.now() - start > 30_000) throw new Error(`/healthz did not answer within 30 s: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  child.kill('SIGTERM');
  await closed;
  const peakRssMb = Math.round(Number(readFileSync(rssFile, 'utf8').split(' ')[0]) / 1024);
  rmSync(rssFile, { force: true });
  return { wallMs, peakRssMb };
}

/**
 * The start-up rows, against a running sandbox: help, status (signed in), a run with no new mail (one delta
 * request), and start to /healthz. Example: `printRows(await startupRows(sb, f, 7))`.
 */
export async function startupRows(sb: SandboxInfo, f: FetchLike, runs: number): Promise<Row[]> {
  const { bin } = await installedPackage();
  const env = await signedInAgent(sb, f);
  const cwd = env.DATA_DIR!;
  const cli = (args: string[], expect: number) => async () => {
    const r = await timeProcess(bin, args, env, cwd);
    if (r.code !== expect) throw new Error(`mailbox-agent ${args.join(' ')} exited ${r.code}, expected ${expect}: ${r.stdout}`);
    return r;
  };
  const rows: Row[] = [];
  const add = async (name: string, target: string, measure: () => Promise<{ wallMs: number; peakRssMb: number }>, note?: string) => {
    process.stderr.write(`… ${name}\n`);
    rows.push({ name, target, ...(await paired(runs, measure, cwd)), ...(note ? { note } : {}) });
  };
  await add('`mailbox-agent --help`', '≤ 0.15 s', cli(['--help'], 0));
  await add('`mailbox-agent run --help`', '≤ 0.15 s', cli(['run', '--help'], 0));
  await add('`mailbox-agent status`', '≤ 0.25 s, ≤ 60 MB', cli(['status'], 0));
  await add('`mailbox-agent status --json`', '≤ 0.25 s, ≤ 60 MB', cli(['status', '--json'], 0));

  // A run with no new mail: the first run reads a small inbox and catches up, every later one is a single delta request.
  await admin(sb, f, `/mailbox/${USER}/generate`, { count: 200, seed: 4242 });
  await admin(sb, f, '/options', { latencyMs: 0, subRequestMs: 0, maxConcurrentPerMailbox: 4 });
  await cli(['run', 'bench', '--json'], 0)();
  let requests = 0;
  await add('`mailbox-agent run bench` with no new mail', '≤ 0.5 s', async () => {
    const r = await cli(['run', 'bench', '--json'], 0)();
    requests = (JSON.parse(r.stdout) as { graphRequests: number }).graphRequests;
    return r;
  });
  rows.at(-1)!.note = `${requests} Graph request(s) per run, sandbox with no added latency`;

  // start: the dashboard and the scheduler; the running bench sandbox is found on SANDBOX_PORT and used.
  await add('`mailbox-agent start` until GET /healthz is 200', '≤ 1.5 s', () => startToHealthz(bin, env, cwd));
  return rows;
}

export function formatRows(rows: Row[]): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
  const lines = ['| command | target | median wall | min–max | median / `node -e 0` (paired) | median peak RSS | runs |', '|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    lines.push(`| ${r.name}${r.note ? ` (${r.note})` : ''} | ${r.target} | ${s(median(r.wall))} | ${s(Math.min(...r.wall))}–${s(Math.max(...r.wall))} | ${median(r.ratios).toFixed(2)}x | ${median(r.rss)} MB | ${r.wall.length} |`);
  }
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.join(here, 'cli-start.ts')) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--runs');
  const runs = i >= 0 ? Number(args[i + 1]) : 7;
  const { startBenchSandbox } = await import('./sandbox-process.ts');
  const { sb, f, stop } = await startBenchSandbox();
  try {
    console.log(formatRows(await startupRows(sb, f, runs)));
  } finally {
    stop();
  }
}
