/**
 * One benchmark scenario in its own process (so peak RSS is this client's alone):
 *   node --import tsx bench/scenario.ts agent|budget|naive|floor <sandbox.json> [<memory timeline .tsv>]
 * (budget: the agent paced by RequestBudget at BENCH_BUDGET, e.g. 2000/6s)
 * Prints one JSON line: wall time, Graph requests, token requests, peak RSS, and for the agent a second run.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { JobsFile } from '../src/config/jobs-file.ts';
import { createLogger } from '../src/config/logger.ts';
import { GraphClient } from '../src/graph/client.ts';
import { RequestBudget } from '../src/graph/request-budget.ts';
import { parseBudget } from '../src/config/env-schema.ts';
import { JobRunner } from '../src/jobs/runner.ts';
import { openStore } from '../src/store/index.ts';
import { admin, appTokens, isNewsletter, isUrgent, ROOT, RULES, sandboxFetch, type SandboxInfo } from './common.ts';

const [kind, infoFile, timelineFile] = process.argv.slice(2);
const sb = JSON.parse(readFileSync(infoFile!, 'utf8')) as SandboxInfo;
const f = sandboxFetch(sb);
const tokens = appTokens(sb, f);
const tokenCount = async () => ((await admin(sb, f, '/log')).tokenRequests as unknown[]).length;
const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);
/** CPU time (user + system) since `from`, ms: it moves far less than wall time on a shared machine. */
const cpuMsSince = (from: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(from);
  return Math.round((d.user + d.system) / 1000);
};
/**
 * The client's peak, read before the bench's closing reads of the sandbox's request log: that log (up to
 * 5,000 entries) costs ~5 MB of RSS per read, which is the bench's, not the client's.
 */
let clientPeakRssMb: number | undefined;
/** With a timeline file (run.ts --mem-timeline): process.memoryUsage() every 100 ms, in MB, with the Graph requests so far. */
let requestsSoFar = () => 0;
const MB = (n: number) => Math.round(n / 104857.6) / 10;
const timeline: string[] = ['ms\trss\theapTotal\theapUsed\texternal\tarrayBuffers\tgraphRequests'];
let memAtPeak: { ms: number; rss: number } | undefined;
const t0Timeline = performance.now();
const sampleMemory = () => {
  const m = process.memoryUsage();
  const row = { rss: MB(m.rss), heapTotal: MB(m.heapTotal), heapUsed: MB(m.heapUsed), external: MB(m.external), arrayBuffers: MB(m.arrayBuffers), graphRequests: requestsSoFar() };
  timeline.push([Math.round(performance.now() - t0Timeline), ...Object.values(row)].join('\t'));
  if (!memAtPeak || row.rss > memAtPeak.rss) memAtPeak = { ms: Math.round(performance.now() - t0Timeline), ...row };
};
const sampler = timelineFile ? setInterval(sampleMemory, 100) : undefined;

/** The agent's first run; with `budget` (GRAPH_BUDGET's form, e.g. 2000/6s) its requests are paced by RequestBudget. */
async function agent(budget?: string) {
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-bench-agent-'));
  const store = await openStore(`sqlite://${path.join(dir, 'agent.sqlite')}`, Buffer.alloc(32, 7));
  const log = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, done) => done() }) as never });
  const paced = budget ? new RequestBudget({ ...parseBudget(budget), store, mailbox: ROOT }) : undefined;
  const graph = new GraphClient({ graphUrl: new URL(sb.url), tokens, fetch: f, log, budget: paced });
  requestsSoFar = () => graph.requests;
  const jobs = { path: path.join(dir, 'agent.config.yaml'), jobs: [{ name: 'bench', type: 'inbox-rules', schedule: '*/5 * * * *', folder: 'inbox', backfill: true, rules: RULES }] } as unknown as JobsFile;
  const runner = new JobRunner({ jobs, graph, mailboxRoot: ROOT, store, log });
  const t0 = await tokenCount();
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const first = await runner.run('bench');
  const wallMs = performance.now() - start;
  const cpuMs = cpuMsSince(cpu0);
  const budgetRequests = paced?.taken;
  clientPeakRssMb = peakRssMb();
  if (!first.ok) throw new Error(`agent run failed: ${first.error}`);
  const t1 = await tokenCount();
  const second = await runner.run('bench');
  const t2 = await tokenCount();
  await store.close();
  return {
    wallMs, cpuMs, graphRequests: first.graphRequests, tokenRequests: t1 - t0, examined: first.examined, actions: first.actions.length,
    failedActions: first.actions.filter((a) => a.result !== 'done').length,
    ...(paced ? { budgetRequests, reservations: paced.reservations } : {}),
    second: { ok: second.ok, graphRequests: second.graphRequests, tokenRequests: t2 - t1, actions: second.actions.length },
  };
}

/** Raw Graph calls for the naive client and the floor, counting requests and waiting out 429s. */
function rawClient() {
  let requests = 0;
  const call = async (method: string, url: string, body?: unknown, prefer?: string): Promise<any> => {
    for (;;) {
      requests++;
      const r = await f(url.startsWith('http') ? url : `${sb.url}/v1.0${url}`, {
        method,
        headers: { authorization: `Bearer ${await tokens.getAccessToken()}`, prefer: ['IdType="ImmutableId"', ...(prefer ? [prefer] : [])].join(', '), ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      if (r.status === 429 || r.status === 503) {
        await r.body?.cancel();
        await new Promise((res) => setTimeout(res, Number(r.headers.get('retry-after') ?? 1) * 1000));
        continue;
      }
      const text = await r.text();
      if (r.status >= 400) throw new Error(`${method} ${url}: ${r.status} ${text}`);
      return text ? JSON.parse(text) : undefined;
    }
  };
  return { call, count: () => requests };
}

async function newslettersFolder(call: ReturnType<typeof rawClient>['call']): Promise<string> {
  const found = await call('GET', `${ROOT}/mailFolders/msgfolderroot/childFolders?$filter=${encodeURIComponent("displayName eq 'Newsletters'")}`);
  if (found.value[0]) return found.value[0].id;
  return (await call('POST', `${ROOT}/mailFolders/msgfolderroot/childFolders`, { displayName: 'Newsletters' })).id;
}

type Msg = { id: string; subject?: string; isRead?: boolean; from?: { emailAddress?: { address?: string } }; categories?: string[]; flag?: { flagStatus?: string } };

/** What the rules want for one message: one PATCH (merged) and maybe a move; no-ops left out. */
function wanted(m: Msg): { patch?: Record<string, unknown>; move: boolean } {
  const patch: Record<string, unknown> = {};
  let move = false;
  if (isNewsletter(m.from?.emailAddress?.address)) {
    move = true;
    if (!m.isRead) patch.isRead = true;
  }
  if (isUrgent(m.subject)) {
    if (m.flag?.flagStatus !== 'flagged') patch.flag = { flagStatus: 'flagged' };
    if (!(m.categories ?? []).includes('Urgent')) patch.categories = [...(m.categories ?? []), 'Urgent'];
  }
  return { patch: Object.keys(patch).length ? patch : undefined, move };
}

const SELECT = '$select=subject,from,isRead,categories,flag';

/** Sequential pages of 10 via nextLink; one request per action, one at a time. */
async function naive() {
  const { call, count } = rawClient();
  const t0 = await tokenCount();
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const dest = await newslettersFolder(call);
  let link: string | undefined = `${ROOT}/mailFolders/inbox/messages/delta?${SELECT}`;
  let examined = 0;
  let actions = 0;
  while (link) {
    const page: any = await call('GET', link, undefined, 'odata.maxpagesize=10');
    for (const m of page.value as Msg[]) {
      examined++;
      const want = wanted(m);
      // One request per action, as a straightforward client would.
      for (const [k, v] of Object.entries(want.patch ?? {})) {
        await call('PATCH', `${ROOT}/messages/${encodeURIComponent(m.id)}`, { [k]: v });
        actions++;
      }
      if (want.move) {
        await call('POST', `${ROOT}/messages/${encodeURIComponent(m.id)}/move`, { destinationId: dest });
        actions++;
      }
    }
    link = page['@odata.nextLink'];
  }
  clientPeakRssMb = peakRssMb();
  return { wallMs: performance.now() - start, cpuMs: cpuMsSince(cpu0), graphRequests: count(), tokenRequests: (await tokenCount()) - t0, examined, actions };
}

/** Sequential delta pages at the largest page size, then the actions batched 20 per request (chained), 4 batches in flight. */
async function floor() {
  const { call, count } = rawClient();
  const t0 = await tokenCount();
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const dest = await newslettersFolder(call);
  let link: string | undefined = `${ROOT}/mailFolders/inbox/messages/delta?${SELECT}`;
  const patches: { url: string; body: unknown }[] = [];
  const moves: { url: string; body: unknown }[] = [];
  let examined = 0;
  while (link) {
    const page: any = await call('GET', link, undefined, 'odata.maxpagesize=1000');
    for (const m of page.value as Msg[]) {
      examined++;
      const want = wanted(m);
      if (want.patch) patches.push({ url: `${ROOT}/messages/${encodeURIComponent(m.id)}`, body: want.patch });
      if (want.move) moves.push({ url: `${ROOT}/messages/${encodeURIComponent(m.id)}/move`, body: { destinationId: dest } });
    }
    link = page['@odata.nextLink'];
  }
  const runBatches = async (method: string, items: { url: string; body: unknown }[]) => {
    const chunks: (typeof items)[] = [];
    for (let i = 0; i < items.length; i += 20) chunks.push(items.slice(i, i + 20));
    const worker = async () => {
      for (let chunk = chunks.shift(); chunk; chunk = chunks.shift()) {
        let pending = chunk.map((it, i) => ({ ...it, id: String(i) }));
        while (pending.length) {
          const out = await call('POST', '/$batch', {
            requests: pending.map((it, k) => ({ id: it.id, method, url: it.url, headers: { 'content-type': 'application/json', prefer: 'IdType="ImmutableId"' }, body: it.body, ...(k ? { dependsOn: [pending[k - 1]!.id] } : {}) })),
          });
          const retry = new Set((out.responses as { id: string; status: number }[]).filter((r) => r.status === 429 || r.status === 424 || r.status >= 500).map((r) => r.id));
          pending = pending.filter((p) => retry.has(p.id));
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  };
  await runBatches('PATCH', patches);
  await runBatches('POST', moves);
  clientPeakRssMb = peakRssMb();
  return { wallMs: performance.now() - start, cpuMs: cpuMsSince(cpu0), graphRequests: count(), tokenRequests: (await tokenCount()) - t0, examined, actions: patches.length + moves.length };
}

const result = kind === 'agent' ? await agent() : kind === 'budget' ? await agent(process.env.BENCH_BUDGET) : kind === 'naive' ? await naive() : kind === 'floor' ? await floor() : undefined;
if (!result) throw new Error('usage: scenario.ts agent|budget|naive|floor <sandbox.json> (budget: BENCH_BUDGET=2000/6s)');
if (sampler) {
  clearInterval(sampler);
  sampleMemory();
  writeFileSync(timelineFile!, `${timeline.join('\n')}\n`);
}
const mem = process.memoryUsage();
process.stdout.write(`${JSON.stringify({ kind, ...result, ...(memAtPeak ? { memAtPeak, timelineFile } : {}), peakRssMb: clientPeakRssMb ?? peakRssMb(), processPeakRssMb: peakRssMb(), endHeapMb: Math.round(mem.heapUsed / 1048576), endExternalMb: Math.round(mem.external / 1048576), endRssMb: Math.round(mem.rss / 1048576) })}\n`);
