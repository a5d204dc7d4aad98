/**
 * `npm run bench:rules` (= node --import tsx bench/rules-v2.ts [--messages 5000] [--pairs 8] [--latency 25]
 *   [--v1 /tmp/rules-v1] [--header-messages 2000] [--header-reps 3] [--parts a,b] [--json FILE])
 *
 * Issue 13's bench clause, measured: "The bench must not get slower for rules that use none of the new keys, and
 * a rule with `header` costs at most one extra request per 20 candidates (batched)."
 *
 * (a) The standard bench (bench/run.ts's agent row: the generated inbox of --messages, seed 4242, bench/common.ts
 *     RULES, backfill: true, --latency ms per request, 4 concurrent per mailbox) with the current agent and with
 *     the agent as it was before the rules-v2 registry (3bd5c02) landed: a checkout of its parent at --v1, made with
 *       git worktree add --detach /tmp/rules-v1 7e87b37 && ln -s "$PWD/node_modules" /tmp/rules-v1/node_modules
 *     (the dependencies did not change since). --pairs pairs, alternating which goes first; each run is a child
 *     process of its own (its peak RSS is its own) importing the agent from its tree. Per run: wall time and CPU
 *     of the first run (process.cpuUsage around it), the whole process's CPU (tsx compiling included), RSS once the
 *     agent is loaded and peak RSS after the first run, Graph requests (the client's count, and HTTP requests and
 *     $batch sub-requests from the sandbox's log), store calls. Reported: medians, the ratio of medians (current /
 *     before), the paired ratios with their spread, split by which agent went first, and the order-balanced ratio
 *     (the geometric mean of the two orders' medians). The sandbox, the transport (src/config/transport.ts,
 *     unchanged since) and the token provider are the bench's for both.
 * (b) On a generated inbox of --header-messages (seed 4242, so the log stays under the sandbox's 5,000 entries),
 *     the same RULES alone and with one more rule whose cheap keys leave candidates for a `header` key:
 *       wide:   { isRead: false, header: { name: List-Id, contains: news.example.com } } → categorize (matches the
 *               unread newsletters; its categorize merges into the PATCH their markRead already makes)
 *       narrow: { importance: high, header: { name: List-Id, contains: news.example.com } } → categorize (never
 *               matches: newsletters are not high importance; few candidates, so page rounding shows)
 *     From the sandbox's request log: the header GETs (sub-requests), the distinct candidates they asked for, the
 *     $batch requests that carried them, and the HTTP requests of the whole run against the run without the rule.
 *     Extra requests per 20 candidates = extra HTTP requests ÷ (candidates ÷ 20), set against ⌈candidates ÷ 20⌉,
 *     the fewest batches can do, and the number of batches carrying fewer than 20 (one per delta page). Candidates
 *     are checked against the generator's own count of messages the cheap keys leave.
 *
 * --current DIR: the current agent from another checkout (e.g. a worktree of HEAD, so that changes in progress in
 * this one are left out); by default this checkout's sources. The report names each tree's commit and whether its
 * src/ had uncommitted changes.
 *
 * BENCH_RULES_PROFILE=DIR: each child also writes a CPU profile of its first run alone (DIR/run-<pid>.cpuprofile).
 *
 * Child mode (one measured run): node --import tsx bench/rules-v2.ts --child <agent root> <sandbox.json> <rules.json>
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Writable } from 'node:stream';
import type { SandboxInfo } from './common.ts';

const here = path.dirname(new URL(import.meta.url).pathname);
const args = process.argv.slice(2);

/** One measured run of the agent from `root` (a source tree), in this process; prints one JSON line. */
async function child(root: string, infoFile: string, rulesFile: string): Promise<void> {
  const loadStart = performance.now();
  const from = (file: string) => import(pathToFileURL(path.join(root, file)).href);
  const { appTokens, sandboxFetch, ROOT } = await import('./common.ts');
  const { createLogger } = await from('src/config/logger.ts');
  const { GraphClient } = await from('src/graph/client.ts');
  const { JobRunner } = await from('src/jobs/runner.ts');
  const { openStore } = await from('src/store/index.ts');
  const sb = JSON.parse(readFileSync(infoFile, 'utf8')) as SandboxInfo;
  const rules = JSON.parse(readFileSync(rulesFile, 'utf8')) as unknown[];
  const f = sandboxFetch(sb);
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-bench-rules-'));
  const store = await openStore(`sqlite://${path.join(dir, 'agent.sqlite')}`, Buffer.alloc(32, 7));
  // Store calls by method (calls, entries): where the two agents' store traffic differs. Counting costs both the same.
  const storeCalls: Record<string, { calls: number; entries: number }> = {};
  for (const method of ['get', 'getMany', 'set', 'setMany', 'delete'] as const) {
    const original = store[method].bind(store);
    storeCalls[method] = { calls: 0, entries: 0 };
    store[method] = (arg: unknown, ...rest: unknown[]) => {
      storeCalls[method]!.calls++;
      storeCalls[method]!.entries += Array.isArray(arg) ? arg.length : 1;
      return original(arg, ...rest);
    };
  }
  const log = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, done) => done() }) });
  const graph = new GraphClient({ graphUrl: new URL(sb.url), tokens: appTokens(sb, f), fetch: f, log });
  const jobs = { path: path.join(dir, 'agent.config.yaml'), jobs: [{ name: 'bench', type: 'inbox-rules', schedule: '*/5 * * * *', folder: 'inbox', backfill: true, rules }] };
  const runner = new JobRunner({ jobs, graph, mailboxRoot: ROOT, store, log });
  const loadMs = performance.now() - loadStart;
  const rssAfterLoadMb = Math.round(process.memoryUsage().rss / 1048576);
  // BENCH_RULES_PROFILE=DIR: a CPU profile of the first run alone (module loading left out), for `node --cpu-prof`'s tools.
  const profiler = process.env.BENCH_RULES_PROFILE ? await startProfile() : undefined;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const first = await runner.run('bench');
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  if (profiler) writeFileSync(path.join(process.env.BENCH_RULES_PROFILE!, `run-${process.pid}.cpuprofile`), JSON.stringify(await profiler.stop()));
  const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
  if (!first.ok) throw new Error(`agent run failed: ${first.error}`);
  const firstStoreCalls = structuredClone(storeCalls);
  const second = await runner.run('bench');
  await store.close();
  const usage = process.resourceUsage();
  process.stdout.write(`${JSON.stringify({
    wallMs, cpuMs: (cpu.user + cpu.system) / 1000, loadMs, rssAfterLoadMb, peakRssMb, processCpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000,
    graphRequests: first.graphRequests, examined: first.examined, actions: first.actions.length,
    failedActions: first.actions.filter((a: { result: string }) => a.result !== 'done').length,
    second: { ok: second.ok, graphRequests: second.graphRequests, actions: second.actions.length }, storeCalls: firstStoreCalls,
  })}\n`);
}

/** The inspector's sampling profiler in this process; `stop()` gives the profile (the .cpuprofile format). */
async function startProfile(): Promise<{ stop(): Promise<unknown> }> {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      return profile;
    },
  };
}

if (args[0] === '--child') {
  await child(args[1]!, args[2]!, args[3]!);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------------- the bench
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const messages = Number(opt('messages', '5000'));
/**
 * Even, so that each agent goes first in half the pairs: the first run of a pair was ~10 % slower in wall time
 * whichever agent it was (the sandbox's own garbage, regenerated inboxes, every other run), so an odd count leans
 * the ratios towards the agent that goes first more often.
 */
const pairs = Math.ceil(Number(opt('pairs', '8')) / 2) * 2;
const latencyMs = Number(opt('latency', '25'));
const v1 = path.resolve(opt('v1', '/tmp/rules-v1'));
const headerMessages = Number(opt('header-messages', '2000'));
const headerReps = Number(opt('header-reps', '3'));
const parts = opt('parts', 'a,b').split(',');
const jsonOut = opt('json', '');
/** The current agent: this checkout's sources by default, or a clean checkout of a commit (other work in progress left out). */
const current = path.resolve(opt('current', path.resolve(here, '..')));
const SEED = 4242;

if (parts.includes('a') && !existsSync(path.join(v1, 'src/jobs/runner.ts'))) {
  console.error(`bench/rules-v2.ts: no agent tree at ${v1} (--v1) to compare with. Fix: check out the commit before the rules-v2 registry there, e.g.\n  git worktree add --detach ${v1} 7e87b37 && ln -s "$PWD/node_modules" ${v1}/node_modules\n(remove it afterwards with git worktree remove --force ${v1}), or give --parts b.`);
  process.exit(2);
}
if (parts.includes('a') && existsSync(path.join(v1, 'src/jobs/rules/keys/index.ts'))) {
  console.error(`bench/rules-v2.ts: ${v1} already has the rules-v2 registry (src/jobs/rules/keys): it is not the agent before it. Fix: check out 7e87b37 (3bd5c02's parent) there.`);
  process.exit(2);
}

const { startBenchSandbox } = await import('./sandbox-process.ts');
const { admin, RULES, USER } = await import('./common.ts');
const { generateMailbox } = await import('../src/sandbox/mailbox-generator.ts');
const { LOG_LIMIT } = await import('../src/sandbox/context.ts');
const { DELTA_PAGE_SIZE } = await import('../src/jobs/inbox-rules.ts');
const { sb, f, stop } = await startBenchSandbox();
const work = mkdtempSync(path.join(tmpdir(), 'ma-bench-rules-v2-'));
const infoFile = path.join(work, 'sandbox.json');
writeFileSync(infoFile, JSON.stringify(sb));

interface LogEntry { method: string; path: string; status: number; inBatch?: string }
interface ChildResult {
  wallMs: number; cpuMs: number; loadMs: number; rssAfterLoadMb: number; peakRssMb: number; processCpuMs: number; graphRequests: number; examined: number;
  actions: number; failedActions: number; second: { ok: boolean; graphRequests: number; actions: number };
  storeCalls: Record<string, { calls: number; entries: number }>;
}
type Run = ChildResult & { tree: string; processWallMs: number; http: number; subRequests: number; tokenRequests: number; log: LogEntry[] };

/** One whole child process against a freshly generated inbox; the sandbox's log read once it has exited. */
async function measured(tree: string, root: string, count: number, rules: unknown[]): Promise<Run> {
  const rulesFile = path.join(work, `rules-${tree}.json`);
  writeFileSync(rulesFile, JSON.stringify(rules));
  await admin(sb, f, `/mailbox/${USER}/generate`, { count, seed: SEED });
  await admin(sb, f, '/options', { latencyMs, subRequestMs: 0, maxConcurrentPerMailbox: 4 });
  await admin(sb, f, '/log/clear', {});
  const t0 = performance.now();
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'rules-v2.ts'), '--child', root, infoFile, rulesFile], { stdio: ['ignore', 'pipe', 'inherit'], cwd: root });
  let out = '';
  proc.stdout!.on('data', (c) => (out += c));
  const code = await new Promise<number | null>((r) => proc.on('close', r));
  const processWallMs = performance.now() - t0;
  if (code !== 0) throw new Error(`the ${tree} agent's run exited with ${code}`);
  const result = JSON.parse(out.trim().split('\n').at(-1)!) as ChildResult;
  const logged = await admin(sb, f, '/log');
  const log = logged.graphRequests as LogEntry[];
  if (log.length >= LOG_LIMIT) throw new Error(`the sandbox's request log is full (${LOG_LIMIT} entries): counts would be short. Fix: fewer messages (--messages / --header-messages).`);
  const http = log.filter((e) => !e.inBatch).length;
  // The client counts HTTP requests; the log must agree (both runs: the first and the quiet second).
  if (http !== result.graphRequests + result.second.graphRequests) {
    throw new Error(`the ${tree} agent counted ${result.graphRequests}+${result.second.graphRequests} Graph requests but the sandbox logged ${http}`);
  }
  return { ...result, tree, processWallMs, http, subRequests: log.length - http, tokenRequests: (logged.tokenRequests as unknown[]).length, log };
}

/** A tree's commit, and how many files under src/ differ from it (changes in progress are measured too). */
async function describeTree(dir: string): Promise<string> {
  const git = (...cmd: string[]) => new Promise<string>((resolve) => {
    const g = spawn('git', ['-C', dir, ...cmd], { stdio: ['ignore', 'pipe', 'ignore'] });
    let s = '';
    g.stdout.on('data', (c) => (s += c));
    g.on('close', () => resolve(s.trim()));
  });
  const commit = (await git('rev-parse', '--short', 'HEAD')) || 'unknown commit';
  const dirty = (await git('status', '--porcelain', '--', 'src')).split('\n').filter(Boolean).length;
  return dirty ? `${commit} with ${dirty} uncommitted change(s) in src/` : commit;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fix = (n: number, d = 2) => n.toFixed(d);
const range = (xs: number[], d = 2) => `${fix(Math.min(...xs), d)}–${fix(Math.max(...xs), d)}`;
const raw: Record<string, unknown> = { messages, pairs, latencyMs, v1, headerMessages };
const report: string[] = [];

try {
  if (parts.includes('a')) {
    const v1Commit = await describeTree(v1);
    const currentCommit = await describeTree(current);
    const runs: { current: Run; before: Run; first: string }[] = [];
    for (let i = 0; i < pairs; i++) {
      const order = i % 2 === 0 ? (['current', 'before'] as const) : (['before', 'current'] as const);
      const pair: Partial<Record<'current' | 'before', Run>> = {};
      for (const tree of order) {
        process.stderr.write(`… pair ${i + 1}/${pairs}: ${tree} agent, ${messages} messages, ${latencyMs} ms per request\n`);
        pair[tree] = await measured(tree, tree === 'current' ? current : v1, messages, RULES);
        const r = pair[tree]!;
        process.stderr.write(`  run ${fix(r.wallMs / 1000)} s, CPU ${fix(r.cpuMs / 1000)} s, ${r.graphRequests} requests, peak RSS ${r.peakRssMb} MB\n`);
      }
      runs.push({ current: pair.current!, before: pair.before!, first: order[0] });
    }
    for (const { current: c, before: b } of runs) {
      if (c.examined !== b.examined || c.actions !== b.actions || c.failedActions || b.failedActions) {
        throw new Error(`the two agents did different work: examined ${c.examined} vs ${b.examined}, actions ${c.actions} vs ${b.actions}, failed ${c.failedActions} vs ${b.failedActions}`);
      }
    }
    raw.a = runs.map(({ current: c, before: b, first }) => ({ first, current: { ...c, log: undefined }, before: { ...b, log: undefined } }));
    const metrics: { name: string; get: (r: Run) => number; fmt: (n: number) => string }[] = [
      { name: 'wall time of the run', get: (r) => r.wallMs, fmt: (n) => `${fix(n / 1000)} s` },
      { name: 'CPU of the run (user + system)', get: (r) => r.cpuMs, fmt: (n) => `${fix(n / 1000)} s` },
      { name: 'whole process: wall time', get: (r) => r.processWallMs, fmt: (n) => `${fix(n / 1000)} s` },
      { name: 'whole process: CPU (tsx compiling included)', get: (r) => r.processCpuMs, fmt: (n) => `${fix(n / 1000)} s` },
      { name: 'module loading (wall)', get: (r) => r.loadMs, fmt: (n) => `${fix(n / 1000)} s` },
      { name: 'RSS once the agent is loaded (before the run)', get: (r) => r.rssAfterLoadMb, fmt: (n) => `${fix(n, 0)} MB` },
      { name: 'peak RSS after the run', get: (r) => r.peakRssMb, fmt: (n) => `${fix(n, 0)} MB` },
      { name: 'Graph requests (HTTP)', get: (r) => r.graphRequests, fmt: (n) => fix(n, 0) },
      { name: '$batch sub-requests (sandbox log)', get: (r) => r.subRequests, fmt: (n) => fix(n, 0) },
    ];
    const a = runs[0]!.current;
    report.push(`(a) ${messages}-message inbox (seed ${SEED}), bench/common.ts RULES, ${latencyMs} ms per request, ${pairs} pairs alternating (current first in pairs 1, 3, …); current = ${currentCommit} (${current}), before = ${v1Commit} (${v1}); ${a.examined} messages examined, ${a.actions} actions each, second run ${a.second.graphRequests} request(s)`);
    report.push('', '| measure | current (median) | before (median) | ratio of medians | paired ratios: median (min–max) | current first / before first (median paired ratio) | order-balanced ratio | pairs where current is higher | order effect (first ÷ second run of a pair) |', '|---|---|---|---|---|---|---|---|---|');
    for (const m of metrics) {
      const cs = runs.map((r) => m.get(r.current));
      const bs = runs.map((r) => m.get(r.before));
      const ratio = (r: (typeof runs)[number]) => m.get(r.current) / m.get(r.before);
      const ratios = runs.map(ratio);
      // A cost that comes with going first multiplies one order's ratios and divides the other's: their geometric mean cancels it.
      const currentFirst = median(runs.filter((r) => r.first === 'current').map(ratio));
      const beforeFirst = median(runs.filter((r) => r.first === 'before').map(ratio));
      const order = median(runs.map((r) => (r.first === 'current' ? ratio(r) : 1 / ratio(r))));
      report.push(`| ${m.name} | ${m.fmt(median(cs))} | ${m.fmt(median(bs))} | ${fix(median(cs) / median(bs), 3)} | ${fix(median(ratios), 3)} (${range(ratios, 3)}) | ${fix(currentFirst, 3)} / ${fix(beforeFirst, 3)} | ${fix(Math.sqrt(currentFirst * beforeFirst), 3)} | ${runs.filter((r) => m.get(r.current) > m.get(r.before)).length}/${runs.length} | ${fix(order, 3)} |`);
    }
    const calls = (r: Run) => Object.entries(r.storeCalls).filter(([, c]) => c.calls).map(([m, c]) => `${m} ${c.calls}×/${c.entries}`).join(', ');
    report.push('', `Store calls of the first run (calls×/entries): current ${calls(runs[0]!.current)}; before ${calls(runs[0]!.before)}`);
    report.push('', 'Each run (wall s / CPU s / peak MB), current vs before:');
    for (const [i, r] of runs.entries()) {
      report.push(`  pair ${i + 1} (${r.first} first): ${fix(r.current.wallMs / 1000)} / ${fix(r.current.cpuMs / 1000)} / ${r.current.peakRssMb}  vs  ${fix(r.before.wallMs / 1000)} / ${fix(r.before.cpuMs / 1000)} / ${r.before.peakRssMb}`);
    }
  }

  if (parts.includes('b')) {
    const listId = { name: 'List-Id', contains: 'news.example.com' };
    const variants = {
      base: { rules: RULES, cheap: undefined },
      wide: { rules: [...RULES, { name: 'lists', match: { isRead: false, header: listId }, actions: [{ categorize: ['Lists'] }] }], cheap: (m: { isRead: boolean }) => !m.isRead },
      narrow: { rules: [...RULES, { name: 'high lists', match: { importance: 'high', header: listId }, actions: [{ categorize: ['Lists'] }] }], cheap: (m: { importance: string }) => m.importance === 'high' },
    } as const;
    type Variant = keyof typeof variants;
    const inbox = generateMailbox(headerMessages, SEED);
    const byVariant: Record<Variant, Run[]> = { base: [], wide: [], narrow: [] };
    for (let i = 0; i < headerReps; i++) {
      // base between the two header variants, order turned each repetition
      const order: Variant[] = i % 2 === 0 ? ['wide', 'base', 'narrow'] : ['narrow', 'base', 'wide'];
      for (const v of order) {
        process.stderr.write(`… header ${i + 1}/${headerReps}: ${v}, ${headerMessages} messages\n`);
        byVariant[v].push(await measured(`header-${v}`, current, headerMessages, [...variants[v].rules]));
      }
    }
    const isHeaderGet = (e: LogEntry) => Boolean(e.inBatch) && e.method === 'GET' && e.path.includes('internetMessageHeaders');
    const messageOf = (e: LogEntry) => decodeURIComponent(/\/messages\/([^/?]+)/.exec(e.path)?.[1] ?? '');
    const baseHttp = median(byVariant.base.map((r) => r.http));
    raw.b = Object.fromEntries(Object.entries(byVariant).map(([v, rs]) => [v, rs.map((r) => ({ ...r, log: undefined }))]));
    report.push('', `(b) ${headerMessages}-message inbox (seed ${SEED}), RULES plus one rule with header: { name: List-Id, contains: news.example.com } after cheap keys; ${headerReps} runs each, ${latencyMs} ms per request. From the sandbox's request log (first run and the quiet second run):`);
    report.push('', '| rules | cheap keys leave (generator) | candidates fetched (distinct) | header GETs (with retries) | $batch requests carrying them | HTTP requests (median, range) | extra vs RULES alone | extra per 20 candidates | ⌈candidates ÷ 20⌉ (the fewest batches can do) | batches of fewer than 20 |', '|---|---|---|---|---|---|---|---|---|---|');
    report.push(`| RULES alone | — | 0 | 0 | 0 | ${baseHttp} (${range(byVariant.base.map((r) => r.http), 0)}) | — | — | — | — |`);
    for (const v of ['wide', 'narrow'] as const) {
      const rs = byVariant[v];
      const expected = inbox.filter((m) => variants[v].cheap!(m as never)).length;
      const stats = rs.map((r) => {
        const gets = r.log.filter(isHeaderGet);
        const perBatch = new Map<string, number>();
        for (const e of gets) perBatch.set(e.inBatch!.split('#')[0]!, (perBatch.get(e.inBatch!.split('#')[0]!) ?? 0) + 1);
        return { gets: gets.length, candidates: new Set(gets.filter((e) => e.status === 200).map(messageOf)).size, batches: perBatch.size, partial: [...perBatch.values()].filter((n) => n < 20).length };
      });
      const candidates = median(stats.map((s) => s.candidates));
      const extra = median(rs.map((r) => r.http)) - baseHttp;
      const perTwenty = extra / (candidates / 20);
      report.push(`| RULES + ${v} (${v === 'wide' ? 'isRead: false' : 'importance: high'}) | ${expected} | ${candidates} | ${median(stats.map((s) => s.gets))} | ${median(stats.map((s) => s.batches))} (${range(stats.map((s) => s.batches), 0)}) | ${median(rs.map((r) => r.http))} (${range(rs.map((r) => r.http), 0)}) | ${extra} | ${fix(perTwenty, 3)} | ${Math.ceil(candidates / 20)}: ${extra <= Math.ceil(candidates / 20) ? 'met' : `${extra - Math.ceil(candidates / 20)} more`} | ${median(stats.map((s) => s.partial))} |`);
      raw[`b-${v}-stats`] = stats;
    }
    report.push('', `Candidates are batched per delta page (${Math.ceil(headerMessages / DELTA_PAGE_SIZE)} pages of up to ${DELTA_PAGE_SIZE} here), so a run makes Σ⌈candidates of a page ÷ 20⌉ header batches: ⌈N ÷ 20⌉ plus at most one per page after the first.`);
  }
} finally {
  stop();
}

console.log(report.join('\n'));
if (jsonOut) {
  writeFileSync(jsonOut, `${JSON.stringify(raw, null, 1)}\n`);
  console.log(`\nraw results: ${jsonOut}`);
}
