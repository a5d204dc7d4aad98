/**
 * The agent as a user runs it: `mailbox-agent run bench --json`, the INSTALLED binary (the packed tarball,
 * installed with --omit=dev: test/helpers/installed-package.ts) in its own process, with
 * the whole CLI loaded (configuration, store, delegated sign-in and token refresh, every module), signed in
 * with the device-code flow against the bench's sandbox. Its peak RSS is read by bench/peak-rss.mjs, a
 * preload that writes `process.resourceUsage().maxRSS` as the process exits.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { onTheDevicePage, startDeviceSignin } from '../test/helpers/cli.ts';
import { installedPackage } from '../test/helpers/installed-package.ts';
import { RULES, USER, type SandboxInfo } from './common.ts';
import type { FetchLike } from '../src/config/transport.ts';

const here = path.dirname(new URL(import.meta.url).pathname);

export interface CliRun {
  wallMs: number;
  /** The process's CPU time (user + system), ms: it moves far less than wall time on a shared machine. */
  cpuMs: number;
  peakRssMb: number;
  graphRequests: number;
  examined: number;
  actions: number;
  /** 'compiled' when bin.js ran the build in dist/, 'tsx' when it compiled the sources as it loaded them. */
  loaded: string;
}

/** A data dir whose agent talks to the running sandbox (DATA_DIR/sandbox/ca.pem + SANDBOX_PORT) and is signed in as alice. */
export async function signedInAgent(sb: SandboxInfo, f: FetchLike): Promise<Record<string, string>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-bench-cli-'));
  mkdirSync(path.join(dir, 'sandbox'));
  writeFileSync(path.join(dir, 'sandbox', 'ca.pem'), sb.caPem);
  // The calendar job is the README's example (issue 14): the start-up rows time its quiet run too.
  const calendar = {
    name: 'calendar', type: 'calendar-rules', schedule: '*/10 * * * *', window: '30d', workingHours: { start: '08:00', end: '18:00' },
    rules: [
      { name: 'manager-one-on-ones', match: { organizer: 'bob@contoso.test', subjectContains: '1:1' }, actions: [{ respond: 'accept' }] },
      { name: 'after-hours', match: { outsideWorkingHours: true }, actions: [{ respond: { response: 'decline', comment: 'Sorry, that is after my working hours.' } }] },
      { name: 'large-meetings', match: { attendeesMoreThan: 15 }, actions: [{ respond: 'tentative' }, { categorize: ['Large meeting'] }] },
    ],
  };
  writeFileSync(path.join(dir, 'agent.config.yaml'), stringify({ jobs: [{ name: 'bench', type: 'inbox-rules', schedule: '*/5 * * * *', folder: 'inbox', backfill: true, rules: RULES }, calendar] }));
  // GRAPH_BUDGET lifted like the bench sandbox's own budget: these rows measure time and memory, not pacing.
  const env = { DATA_DIR: dir, AGENT_CONFIG: path.join(dir, 'agent.config.yaml'), SANDBOX_PORT: new URL(sb.url).port, LOG_LEVEL: 'warn', GRAPH_BUDGET: '1000000000/10m' };
  const signin = startDeviceSignin(env, dir);
  const { url, userCode } = await signin.code;
  await onTheDevicePage(f, url, userCode, { user: USER });
  const done = await signin.exit;
  if (done.code !== 0) throw new Error(`signin --device failed: ${done.stdout} ${done.stderr}`);
  return env;
}

/** `mailbox-agent run bench --json` once; its own peak RSS, not the bench's. */
export async function runCli(env: Record<string, string>, nodeOptions = ''): Promise<CliRun> {
  const rssFile = path.join(env.DATA_DIR!, `peak-rss-${Date.now()}`);
  const start = performance.now();
  const { bin } = await installedPackage();
  const child = spawn(bin, ['run', 'bench', '--json'], {
    cwd: env.DATA_DIR,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, NODE_OPTIONS: `--import=${path.join(here, 'peak-rss.mjs')} ${nodeOptions}`.trim(), MA_PEAK_RSS_FILE: rssFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  const wallMs = performance.now() - start;
  const result = JSON.parse(out.trim().split('\n').findLast((l) => l.startsWith('{')) ?? '{}') as { ok?: boolean; error?: string; graphRequests: number; examined: number; actions: unknown[] };
  if (code !== 0 || !result.ok) throw new Error(`run bench exited with ${code}: ${result.error ?? ''} ${err}`);
  const [maxRssKb, loaded, cpuMs] = readFileSync(rssFile, 'utf8').split(' ');
  return { wallMs, cpuMs: Number(cpuMs), peakRssMb: Math.round(Number(maxRssKb) / 1024), graphRequests: result.graphRequests, examined: result.examined, actions: result.actions.length, loaded: loaded ?? 'unknown' };
}
