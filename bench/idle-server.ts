/**
 * The idle server's memory over 24 h of five-minute runs, in simulated time: bench/idle-server-child.mjs runs
 * `start`'s startServer from the INSTALLED package's build (plain node, no tsx) against the bench's sandbox and
 * fires the job 288 times back to back, each with no new mail (one delta request), polling /api/status as an open
 * dashboard would. Reported: RSS at hour 1 and hour 24, the live heap after a full GC at both (growth there is a
 * leak), and the process's peak RSS.
 *
 * Alone: `npm run bench:idle [-- --hours 24]`; `npm run bench` runs it too (--idle yes).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { installedPackage } from '../test/helpers/installed-package.ts';
import { freePort } from '../test/helpers/servers.ts';
import type { FetchLike } from '../src/config/transport.ts';
import { SANDBOX_CLIENT_ID } from '../src/sandbox/directory.ts';
import { admin, USER, type SandboxInfo } from './common.ts';
import { signedInAgent } from './cli-run.ts';

const here = path.dirname(new URL(import.meta.url).pathname);

export interface HourSample {
  hour: number;
  rssMb: number;
  heapUsedMb: number;
  heapAfterGcMb: number;
  rssAfterGcMb: number;
  /** The V8 heap's size (committed) after that GC, and memory V8 knows is held outside it (buffers, SQLite's through N-API). */
  heapTotalAfterGcMb: number;
  externalMb: number;
  /** Linux: RSS after that GC split into anonymous memory (V8's and malloc's heaps) and mapped files (node itself, libraries). */
  rssAnonMb?: number;
  rssFileMb?: number;
  maxRssMb: number;
}

/** One simulated day (or `hours`) of the idle server; one sample per simulated hour. */
export async function idleServer(sb: SandboxInfo, f: FetchLike, hours = 24): Promise<HourSample[]> {
  const { dir } = await installedPackage();
  const env = await signedInAgent(sb, f);
  await admin(sb, f, `/mailbox/${USER}/generate`, { count: 200, seed: 4242 });
  await admin(sb, f, '/options', { latencyMs: 0, subRequestMs: 0, maxConcurrentPerMailbox: 4 });
  process.stderr.write(`… idle server: ${hours} simulated hours of five-minute runs\n`);
  const child = spawn(process.execPath, ['--expose-gc', path.join(here, 'idle-server-child.mjs'), dir, String(hours)], {
    cwd: env.DATA_DIR,
    // The sandbox named as the tenant (as a real tenant is configured): start then uses it instead of starting its own.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, PORT: String(await freePort()), MS_CLIENT_ID: SANDBOX_CLIENT_ID, MS_AUTHORITY_HOST: sb.url, MS_GRAPH_URL: sb.url },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const samples: HourSample[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.startsWith('{"hour"')) samples.push(JSON.parse(line) as HourSample);
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`the idle server exited with ${code}`);
  return samples;
}

export function formatIdle(samples: HourSample[]): string {
  const first = samples[0];
  const last = samples.at(-1);
  if (!first || !last) return 'no samples';
  return [
    '| simulated hour | RSS | heap used | live heap after a full GC | RSS after that GC | V8 heap committed after it | of that RSS: anonymous / mapped files |',
    '|---|---|---|---|---|---|---|',
    ...[first, samples[Math.floor(samples.length / 2) - 1] ?? first, last].map((s) => `| ${s.hour} | ${s.rssMb} MB | ${s.heapUsedMb} MB | ${s.heapAfterGcMb} MB | ${s.rssAfterGcMb} MB | ${s.heapTotalAfterGcMb} MB | ${s.rssAnonMb ?? '?'} / ${s.rssFileMb ?? '?'} MB |`),
    '',
    `peak RSS of the process over the ${last.hour} hours: ${last.maxRssMb} MB; live heap hour ${first.hour} → ${last.hour}: ${first.heapAfterGcMb} → ${last.heapAfterGcMb} MB; RSS after GC ${first.rssAfterGcMb} → ${last.rssAfterGcMb} MB`,
  ].join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.join(here, 'idle-server.ts')) {
  const { mainWithSandbox } = await import('./sandbox-process.ts');
  await mainWithSandbox('--hours', 24, async (sb, f, hours) => formatIdle(await idleServer(sb, f, hours)));
}
