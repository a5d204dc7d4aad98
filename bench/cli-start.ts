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
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { installedPackage } from '../test/helpers/installed-package.ts';
import { freePort } from '../test/helpers/servers.ts';
import type { FetchLike } from '../src/config/transport.ts';
import { admin, USER, type SandboxInfo } from './common.ts';
import { signedInAgent } from './cli-run.ts';

const here = path.dirname(new URL(import.meta.url).pathname);
const PEAK_RSS = path.join(here, 'peak-rss.mjs');

export interface Timed {
  wallMs: number;
  peakRssMb: number;
  /** user + system CPU time of the process: on a busy shared machine it moves far less than wall time. */
  cpuMs: number;
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
  let figures: string[];
  try {
    figures = readFileSync(rssFile, 'utf8').split(' ');
    rmSync(rssFile, { force: true });
  } catch {
    throw new Error(`${command} ${args.join(' ')} wrote no peak RSS (exit ${code}): ${stderr}`);
  }
  return { wallMs, peakRssMb: Math.round(Number(figures[0]) / 1024), cpuMs: Number(figures[2]), code, stdout };
}

export interface Row {
  name: string;
  target: string;
  wall: number[];
  ratios: number[];
  rss: number[];
  cpu: number[];
  floorCpu: number[];
  note?: string;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Runs `measure` `runs` times after a warm-up, each time paired with `node -e 0`. */
async function paired(runs: number, measure: () => Promise<Measured>, cwd: string): Promise<Pick<Row, 'wall' | 'ratios' | 'rss' | 'cpu' | 'floorCpu'>> {
  await measure();
  const wall: number[] = [];
  const ratios: number[] = [];
  const rss: number[] = [];
  const cpu: number[] = [];
  const floorCpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const a = await measure();
    const b = await timeProcess(process.execPath, ['-e', '0'], {}, cwd);
    wall.push(a.wallMs);
    rss.push(a.peakRssMb);
    cpu.push(a.cpuMs);
    floorCpu.push(b.cpuMs);
    ratios.push(a.wallMs / b.wallMs);
  }
  return { wall, ratios, rss, cpu, floorCpu };
}

/** A new data dir; with a sandbox, its CA in DATA_DIR/sandbox/ca.pem, which the agent then trusts for that origin only. */
function freshDataDir(sb?: SandboxInfo): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-bench-start-'));
  if (sb) {
    mkdirSync(path.join(dir, 'sandbox'));
    writeFileSync(path.join(dir, 'sandbox', 'ca.pem'), sb.caPem);
  }
  return dir;
}

/** `mailbox-agent start` until GET /healthz answers 200 (polled every 10 ms), then SIGTERM. */
type Measured = Pick<Timed, 'wallMs' | 'peakRssMb' | 'cpuMs'>;

async function startToHealthz(bin: string, env: Record<string, string>, cwd: string): Promise<Measured> {
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
  // /healthz answers as soon as the server listens, a moment before start installs its signal handlers; a SIGTERM
  // then would end it without its exit handler (no peak RSS). The time is already taken.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  child.kill('SIGTERM');
  await closed;
  let peakRssMb = NaN;
  try {
    peakRssMb = Math.round(Number(readFileSync(rssFile, 'utf8').split(' ')[0]) / 1024);
    rmSync(rssFile, { force: true });
  } catch {
    // killed before its handlers were installed: no figure
  }
  // The CPU figure would include the second it was left running: only the wall time to /healthz counts here.
  return { wallMs, peakRssMb, cpuMs: NaN };
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
  const add = async (name: string, target: string, measure: () => Promise<Measured>, note?: string) => {
    process.stderr.write(`… ${name}\n`);
    rows.push({ name, target, ...(await paired(runs, measure, cwd)), ...(note ? { note } : {}) });
    process.stderr.write(`${formatRows(rows.slice(-1)).split('\n').at(-1)}\n`);
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
  // The calendar-rules job (README example) with nothing new in its window: one calendarView delta request.
  await cli(['run', 'calendar', '--json'], 0)();
  let calendarRequests = 0;
  await add('`mailbox-agent run calendar` (calendar-rules) with nothing new', '1 request', async () => {
    const r = await cli(['run', 'calendar', '--json'], 0)();
    calendarRequests = (JSON.parse(r.stdout) as { graphRequests: number }).graphRequests;
    return r;
  });
  rows.at(-1)!.note = `${calendarRequests} Graph request(s) per run`;

  // start with a tenant configured (here the bench's sandbox named as the identity provider and Graph, as a real
  // tenant would be): the web UI and the scheduler. Then `npm start` out of the box: MS_CLIENT_ID unset, so the
  // process also starts the built-in sandbox (its CA made by the warm-up run, as a first start makes it).
  const tenant = { DATA_DIR: freshDataDir(sb), AGENT_CONFIG: env.AGENT_CONFIG!, SANDBOX_PORT: new URL(sb.url).port, LOG_LEVEL: 'warn', MS_CLIENT_ID: '00000000-0000-4000-8000-0000000b0e5c', MS_AUTHORITY_HOST: sb.url, MS_GRAPH_URL: sb.url };
  await add('`mailbox-agent start` until GET /healthz is 200 (a tenant configured)', '≤ 1.5 s', () => startToHealthz(bin, tenant, tenant.DATA_DIR));
  const sandboxed = { DATA_DIR: freshDataDir(), AGENT_CONFIG: env.AGENT_CONFIG!, SANDBOX_PORT: String(await freePort()), LOG_LEVEL: 'warn' };
  await add('`mailbox-agent start` until GET /healthz is 200 (no MS_CLIENT_ID: it starts the sandbox too)', '≤ 1.5 s', () => startToHealthz(bin, sandboxed, sandboxed.DATA_DIR));
  return rows;
}

export function formatRows(rows: Row[]): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
  const lines = ['| command | target | median wall | min–max | median / `node -e 0` (paired) | median CPU (`node -e 0`) | median peak RSS | runs |', '|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    lines.push(`| ${r.name}${r.note ? ` (${r.note})` : ''} | ${r.target} | ${s(median(r.wall))} | ${s(Math.min(...r.wall))}–${s(Math.max(...r.wall))} | ${median(r.ratios).toFixed(2)}x | ${Number.isNaN(median(r.cpu)) ? '—' : `${(median(r.cpu) / 1000).toFixed(3)} s (${(median(r.floorCpu) / 1000).toFixed(3)} s)`} | ${Number.isNaN(median(r.rss)) ? '—' : `${median(r.rss)} MB`} | ${r.wall.length} |`);
  }
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.join(here, 'cli-start.ts')) {
  const { mainWithSandbox } = await import('./sandbox-process.ts');
  await mainWithSandbox('--runs', 7, async (sb, f, runs) => formatRows(await startupRows(sb, f, runs)));
}
