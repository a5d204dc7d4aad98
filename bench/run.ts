/**
 * `npm run bench` (= npm run build && node --import tsx bench/run.ts [--messages 5000] [--only agent,floor,naive] [--big 50000|0] [--budget 2000/6s|no] [--strict yes|no] [--cli yes|no] [--startup yes|no] [--runs 7] [--idle yes|no] [--cli-node-options '--max-semi-space-size=…'] [--mem-timeline] [--node-flags '--max-semi-space-size=…'])
 *
 * The sandbox runs in its own process with 25 ms latency per HTTP request (a `$batch` pays it once: batching
 * saves round trips [json-batching]) and the 4-concurrent limit (batch sub-requests hold the slots); each
 * client runs in its own process so its peak RSS is its own. Scenarios: the agent's first full run
 * (backfill: true) and a second run with no new mail; a naive client (pages of 10 via nextLink, one
 * request per action); the floor (delta pages of 1000 in sequence, then actions in chained $batches of 20,
 * 4 in flight). --strict (default yes) runs the agent and the floor again with every `$batch` sub-request
 * also taking 25 ms in its slot (batching then saves no server time at all; naive has no batches, so it is
 * the same in both models). Then the agent alone on a 50,000-message inbox (no latency) for peak RSS.
 * --cli (default yes): the INSTALLED binary too (the tarball npm pack makes, installed with --omit=dev), `mailbox-agent
 * run bench --json` on the same 50,000 messages, signed in with the device-code flow, and the floor on the same inbox
 * for the ratio; its peak RSS includes everything the CLI loads (bench/cli-run.ts).
 * --budget (default 2000/6s): the --big backfill again, paced by RequestBudget at that GRAPH_BUDGET against a
 * sandbox enforcing the same budget: time against the budget's floor (requests ÷ rate), requests, budget 429s.
 * --startup (default yes) with --runs N (default 7): what a person waits for, on the installed binary: --help,
 * status, a run with no new mail, start until /healthz answers (bench/cli-start.ts; alone: npm run bench:cli).
 * --idle (default yes): the server's memory over 24 simulated hours of five-minute runs (bench/idle-server.ts;
 * alone: npm run bench:idle).
 * Peak RSS is the client process's maxRSS when its work is done (the agent: after its first run), before the
 * bench reads the sandbox's request log to count token requests.
 * --mem-timeline: each client samples process.memoryUsage() every 100 ms into a TSV (path printed) and
 * reports the split (heap, external, array buffers) at its highest sampled RSS. --node-flags: extra Node
 * flags for the client processes only (V8 memory experiments); the sandbox's process is left as it is.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { runCli, signedInAgent, type CliRun } from './cli-run.ts';
import { formatRows, startupRows } from './cli-start.ts';
import { formatIdle, idleServer } from './idle-server.ts';
import { admin, sandboxFetch, USER, type SandboxInfo } from './common.ts';
import { parseBudget } from '../src/config/env-schema.ts';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const messages = Number(opt('messages', '5000'));
const only = opt('only', 'agent,floor,naive').split(',');
const big = Number(opt('big', '50000'));
const strict = opt('strict', 'yes') !== 'no';
const withCli = opt('cli', 'yes') !== 'no';
const here = path.dirname(new URL(import.meta.url).pathname);
const memTimeline = args.includes('--mem-timeline');
const nodeFlags = opt('node-flags', '').split(' ').filter(Boolean);
const startup = opt('startup', 'yes') !== 'no';
const startupRuns = Number(opt('runs', '7'));
let startupTable = '';
const idle = opt('idle', 'yes') !== 'no';
/** --budget 2000/6s|no: the --big backfill paced by GRAPH_BUDGET against a sandbox enforcing the same budget. */
const budgetOpt = opt('budget', '2000/6s');
let idleTable = '';

const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'sandbox-server.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
const first = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
const sb = JSON.parse(first) as SandboxInfo;
const infoFile = path.join(mkdtempSync(path.join(tmpdir(), 'ma-bench-')), 'sandbox.json');
writeFileSync(infoFile, JSON.stringify(sb));
const f = sandboxFetch(sb);

async function scenario(kind: string, count: number, latencyMs: number, subRequestMs = 0): Promise<Record<string, any>> {
  await admin(sb, f, `/mailbox/${USER}/generate`, { count, seed: 4242 });
  await admin(sb, f, '/options', { latencyMs, subRequestMs, maxConcurrentPerMailbox: 4 });
  await admin(sb, f, '/log/clear', {});
  process.stderr.write(`… ${kind}: ${count} messages, ${latencyMs} ms latency per request, ${subRequestMs} ms per batch sub-request\n`);
  const timelineFile = memTimeline ? path.join(path.dirname(infoFile), `memory-${kind}-${count}.tsv`) : undefined;
  const proc = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', path.join(here, 'scenario.ts'), kind, infoFile, ...(timelineFile ? [timelineFile] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout!.on('data', (c) => (out += c));
  const code = await new Promise<number | null>((r) => proc.on('close', r));
  if (code !== 0) throw new Error(`${kind} exited with ${code}`);
  // The result is the last JSON line; anything else (--node-flags '--trace-gc', say) is passed on to stderr.
  const lines = out.trim().split('\n');
  const result = lines.findLast((l) => l.startsWith('{"kind"'))!;
  for (const l of lines) if (l !== result) process.stderr.write(`${l}\n`);
  return JSON.parse(result);
}

/**
 * The big backfill with the agent's budget equal to the sandbox's (Outlook's sliding window, scaled down so it
 * runs in minutes): time against the budget's own floor (requests ÷ rate), requests, and the budget's 429s.
 */
async function budgetScenario(count: number, budget: string): Promise<Record<string, any>> {
  const settings = parseBudget(budget);
  await admin(sb, f, '/budget', settings);
  // Earlier rows' requests leave the window first, so the row starts with the whole budget.
  await new Promise((r) => setTimeout(r, settings.windowMs));
  const before = (await admin(sb, f, '/budget')).throttled as number;
  process.env.BENCH_BUDGET = budget;
  try {
    const r = await scenario('budget', count, 0);
    const throttled = ((await admin(sb, f, '/budget')).throttled as number) - before;
    return { ...r, settings, throttled, floorMs: (r.budgetRequests / settings.limit) * settings.windowMs };
  } finally {
    await admin(sb, f, '/budget', { limit: 1_000_000_000 });
  }
}

/** The real binary (`run bench --json`) on the big inbox, as bin.js loads it (the build when current) and from the sources. */
async function cliScenario(count: number, sources: boolean): Promise<CliRun> {
  const env = await signedInAgent(sb, f);
  await admin(sb, f, `/mailbox/${USER}/generate`, { count, seed: 4242 });
  await admin(sb, f, '/options', { latencyMs: 0, subRequestMs: 0, maxConcurrentPerMailbox: 4 });
  process.stderr.write(`… mailbox-agent run (the CLI${sources ? ', sources through tsx' : ''}): ${count} messages, no latency\n`);
  return runCli(sources ? { ...env, MAILBOX_AGENT_SOURCES: '1' } : env, opt('cli-node-options', ''));
}

const results: Record<string, Record<string, any>> = {};
try {
  for (const kind of only) results[kind] = await scenario(kind, messages, 25);
  if (strict) for (const kind of only.filter((k) => k !== 'naive')) results[`${kind}Strict`] = await scenario(kind, messages, 25, 25);
  if (big > 0) results.big = await scenario('agent', big, 0);
  if (big > 0 && withCli) {
    // The installed binary (the packed tarball: it holds the build, not the sources) against the floor, same inbox.
    results.cli = await cliScenario(big, false) as unknown as Record<string, any>;
    results.bigFloor = await scenario('floor', big, 0);
  }
  if (big > 0 && budgetOpt !== 'no') results.budget = await budgetScenario(big, budgetOpt);
  if (startup) startupTable = formatRows(await startupRows(sb, f, startupRuns));
  if (idle) idleTable = formatIdle(await idleServer(sb, f, 24));
} finally {
  child.kill('SIGTERM');
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const rows: string[] = ['| client | wall time | CPU time | Graph requests | token requests | peak RSS | messages examined | actions |', '|---|---|---|---|---|---|---|---|'];
const row = (name: string, r: Record<string, any>) => rows.push(`| ${name} | ${s(r.wallMs)} | ${s(r.cpuMs)} | ${r.graphRequests} | ${r.tokenRequests} | ${r.peakRssMb} MB | ${r.examined} | ${r.actions} |`);
if (results.agent) row('agent, first run (backfill: true)', results.agent);
if (results.floor) row('floor', results.floor);
if (results.naive) row('naive', results.naive);
if (results.agentStrict) row('agent, strict model (25 ms per sub-request too)', results.agentStrict);
if (results.floorStrict) row('floor, strict model', results.floorStrict);
if (results.big) row(`agent, ${big} messages, no latency`, results.big);
if (results.cli) row(`installed \`mailbox-agent run\` (${results.cli.loaded === 'compiled' ? 'its build' : 'sources through tsx'}), ${big} messages, no latency`, { ...results.cli, tokenRequests: '—' });
if (results.bigFloor) row(`floor, ${big} messages, no latency`, results.bigFloor);
console.log(rows.join('\n'));
if (results.agent) {
  const a = results.agent;
  console.log(`\nagent second run (no new mail): ${a.second.graphRequests} Graph request(s), ${a.second.tokenRequests} token request(s), ${a.second.actions} actions`);
  if (results.floor) console.log(`agent / floor: time ${(a.wallMs / results.floor.wallMs).toFixed(2)}x, requests ${(a.graphRequests / results.floor.graphRequests).toFixed(2)}x`);
  if (results.naive) console.log(`naive / agent: time ${(results.naive.wallMs / a.wallMs).toFixed(1)}x`);
}
if (results.agentStrict) {
  const a = results.agentStrict;
  if (results.floorStrict) console.log(`strict model: agent / floor: time ${(a.wallMs / results.floorStrict.wallMs).toFixed(2)}x, requests ${(a.graphRequests / results.floorStrict.graphRequests).toFixed(2)}x`);
  if (results.naive) console.log(`strict model: naive / agent: time ${(results.naive.wallMs / a.wallMs).toFixed(1)}x${results.floorStrict ? `; naive / floor: ${(results.naive.wallMs / results.floorStrict.wallMs).toFixed(1)}x` : ''}`);
}
if (results.big) {
  const b = results.big;
  console.log(`agent at ${big} messages, at the end of the run: heap used ${b.endHeapMb} MB, external ${b.endExternalMb} MB, RSS ${b.endRssMb} MB (peak RSS ${b.peakRssMb} MB; ${b.processPeakRssMb} MB with the bench's closing reads of the sandbox log and the second run)`);
}
if (results.cli && results.bigFloor) console.log(`installed mailbox-agent run / floor at ${big} messages: time ${(results.cli.wallMs / results.bigFloor.wallMs).toFixed(2)}x (both whole processes), CPU time ${(results.cli.cpuMs / results.bigFloor.cpuMs).toFixed(2)}x (the CLI's whole process, start-up included; the floor's run)`);
if (results.budget) {
  const b = results.budget;
  console.log(`\n| ${big}-message backfill, GRAPH_BUDGET = sandbox budget = ${budgetOpt} | wall time | budget's floor (requests ÷ rate) | time / floor | requests (sub-requests counted) | HTTP requests | budget 429s | store reservations |`);
  console.log('|---|---|---|---|---|---|---|---|');
  console.log(`| agent, first run (backfill: true) | ${s(b.wallMs)} | ${s(b.floorMs)} | ${(b.wallMs / b.floorMs).toFixed(2)}x | ${b.budgetRequests} | ${b.graphRequests} | ${b.throttled} | ${b.reservations} |`);
}
if (startupTable) console.log(`\nWhat a person waits for (the installed binary, whole process, ${startupRuns} runs each after a warm-up):\n${startupTable}`);
if (idleTable) console.log(`\nThe idle server (the installed build's startServer), 24 simulated hours of five-minute runs with no new mail:\n${idleTable}`);
if (memTimeline) {
  for (const [name, r] of Object.entries(results)) {
    const p = r.memAtPeak;
    if (p) console.log(`${name}: highest sampled RSS ${p.rss} MB at ${(p.ms / 1000).toFixed(1)} s (after ${p.graphRequests} Graph requests): heap used ${p.heapUsed} of ${p.heapTotal} MB, external ${p.external} MB (array buffers ${p.arrayBuffers} MB); timeline ${r.timelineFile}`);
  }
}
