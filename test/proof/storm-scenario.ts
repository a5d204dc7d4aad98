/**
 * Fault storms: the installed `mailbox-agent run proof --json` on a backfill while the sandbox answers with 429s
 * (Retry-After in seconds, fractional, an HTTP date; inside `$batch` too), 5xx before and after acting, resets before
 * and after acting, malformed and truncated JSON, slow answers, and a token endpoint that is down for a while.
 * Runs until one succeeds; then the mailbox must be exactly what the rules say (this file's own evaluation, from
 * crash-scenario.ts), no request repeated before its Retry-After, and never more than 4 requests in flight per mailbox.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { GraphRequestLogEntry } from '../../src/sandbox/context.ts';
import type { FaultSpec } from '../../src/sandbox/faults.ts';
import { cli } from '../helpers/cli.ts';
import { signIn, startHarness } from '../helpers/harness.ts';
import { ALICE, drainLogs, expectedFor, jobsYaml, mutationsOf, proofRules, webhookServer } from './crash-scenario.ts';

export interface StormFigures {
  messages: number;
  faultsInjected: number;
  faultsFired: Record<string, number>;
  tokenErrorsFired: number;
  runs: number;
  survived: number;
  lost: number;
  doubled: number;
  reportedUnsure: number;
  retriesSeen: number;
  earlyRepeats: number;
  concurrencyRefusals: number;
}

/** The storm, in the order the sandbox consumes it (the first matching fault wins). */
export function stormFaults(now: number): FaultSpec[] {
  return [
    { kind: '429', match: { method: 'GET', pathContains: '/messages/delta' }, retryAfter: '1', times: 2 },
    { kind: '429', match: { method: 'GET', pathContains: '/mailFolders' }, retryAfter: new Date(now + 2_000).toUTCString(), times: 1 },
    // Inside $batch: a sub-request refused for the mailbox's concurrency, fractional Retry-After.
    { kind: '429', match: { method: 'PATCH', pathContains: '/messages/' }, retryAfter: '0.25', times: 6 },
    { kind: '503', match: { method: 'POST', pathContains: '$batch' }, retryAfter: '0.2', times: 2 },
    { kind: '500', match: { method: 'PATCH', pathContains: '/messages/' }, times: 3 },
    { kind: '502', match: { method: 'PATCH', pathContains: '/messages/' }, times: 2, phase: 'before' },
    { kind: '504', match: { method: 'POST', pathContains: '/move' }, times: 2 },
    { kind: '500', match: { method: 'POST', pathContains: '/forward' }, times: 1 },
    { kind: 'reset', match: { method: 'POST', pathContains: '$batch' }, after: 2, times: 1 },
    { kind: 'reset', match: { method: 'POST', pathContains: '$batch' }, after: 2, times: 1, phase: 'after' },
    { kind: 'malformed', match: { method: 'GET', pathContains: '/messages/delta' }, after: 1, times: 1 },
    { kind: 'truncated', match: { method: 'POST', pathContains: '$batch' }, after: 3, times: 1 },
    { kind: 'latency', match: { method: 'POST', pathContains: '$batch' }, latencyMs: 1_500, times: 2 },
  ];
}

/** The Retry-After (ms) a refused request was given, from the fault that refused it. */
function retryAfterMs(spec: FaultSpec, at: number): number | undefined {
  if (!spec.retryAfter) return undefined;
  if (/^\d+(\.\d+)?$/.test(spec.retryAfter)) return Number(spec.retryAfter) * 1000;
  return Date.parse(spec.retryAfter) - at;
}

function specFor(specs: FaultSpec[], e: GraphRequestLogEntry): FaultSpec | undefined {
  return specs.find((s) => s.kind === String(e.status) && (!s.match?.method || s.match.method === e.method) && (!s.match?.pathContains || decodeURIComponent(e.path).includes(s.match.pathContains)));
}

/** Requests sent again before the Retry-After their refusal carried (same method and path; `$batch` has no identity). */
export function earlyRepeats(specs: FaultSpec[], log: GraphRequestLogEntry[]): { checked: number; early: string[] } {
  let checked = 0;
  const early: string[] = [];
  for (const [i, e] of log.entries()) {
    if (e.status !== 429 && e.status !== 503) continue;
    if (e.path.endsWith('/$batch')) continue;
    const spec = specFor(specs, e);
    const t = Date.parse(e.at);
    const wait = spec && retryAfterMs(spec, t);
    if (wait === undefined) continue;
    const next = log.slice(i + 1).find((x) => x.method === e.method && x.path === e.path);
    if (!next) continue;
    checked++;
    if (Date.parse(next.at) < t + wait) early.push(`${e.method} ${e.path} again after ${Date.parse(next.at) - t} ms, Retry-After ${wait} ms`);
  }
  return { checked, early };
}

export async function stormProof(options: { messages: number; seed: number }): Promise<StormFigures> {
  const hook = await webhookServer();
  const rules = proofRules(hook.url);
  const h = await startHarness({ jobsFile: jobsYaml(rules), sandboxOptions: { accessTokenLifetimeSec: 6 } });
  try {
    h.sandbox.admin.generate(ALICE, options.messages, options.seed);
    await signIn(h);
    h.sandbox.admin.setRevokeOnReuse(true);
    h.sandbox.admin.setSubRequestMs(2);
    const before = h.sandbox.admin.messages(ALICE, 'inbox');
    const expected = new Map(before.map((m) => [m.immutableId, expectedFor(rules, m)]));
    const logs = drainLogs(h);
    logs.drain();
    // The access token is due when the first run starts, and the token endpoint is down for its first answers.
    await new Promise((r) => setTimeout(r, 3_200));
    h.sandbox.admin.injectTokenError('*', { status: 503, error: 'temporarily_unavailable', aadsts: 90033, retryAfter: '1' }, 3);
    const specs = stormFaults(Date.now());
    for (const spec of specs) h.sandbox.admin.injectFault(spec);
    const injected = specs.reduce((n, s) => n + (s.times ?? 1), 0) + 3;
    const timer = setInterval(logs.drain, 20);
    const results: { ok: boolean; actions: { messageId: string; action: string; result: string }[] }[] = [];
    let runs = 0;
    try {
      for (; runs < 8; ) {
        runs++;
        const out = await cli(['run', 'proof', '--json'], h.env, h.dir, { timeoutMs: 300_000 });
        writeFileSync(path.join(h.dir, `storm-run-${runs}.log`), `${out.stdout}\n${out.stderr}`);
        if (out.stdout.trim().startsWith('{')) results.push(JSON.parse(out.stdout));
        if (out.code === 0) break;
        assert.notEqual(out.code, 2, `the storm cost the sign-in: ${out.stderr}`);
      }
    } finally {
      clearInterval(timer);
      logs.drain();
    }
    assert.equal(results.at(-1)?.ok, true, `no run succeeded in ${runs}: ${JSON.stringify(results.at(-1))?.slice(0, 500)}`);
    const fired = h.sandbox.admin.faults().fired;
    const tokenErrorsFired = logs.tokens.filter((t) => t.status === 503).length;

    const folders = new Map(h.sandbox.admin.folders(ALICE).map((f) => [f.id, f.wellKnownName ?? f.path]));
    const now = new Map(h.sandbox.admin.messages(ALICE).map((m) => [m.immutableId, m]));
    const mutations = mutationsOf(logs.graph);
    const reported = new Set(results.flatMap((r) => r.actions).filter((a) => a.result !== 'done').map((a) => `${a.messageId}:${a.action}`));
    let survived = 0;
    let lost = 0;
    let doubled = 0;
    let reportedUnsure = 0;
    const problems: string[] = [];
    for (const [id, want] of expected) {
      const m = now.get(id);
      if (!m) {
        lost++;
        problems.push(`${id} gone`);
        continue;
      }
      const wrong: string[] = [];
      if (folders.get(m.folderId) !== want.folder) wrong.push(`folder ${folders.get(m.folderId)}`);
      if (new Set(m.categories).size !== m.categories.length) (doubled++, wrong.push(`categories doubled ${m.categories}`));
      if ([...m.categories].sort().join() !== [...want.categories].sort().join()) wrong.push(`categories ${m.categories}`);
      if (m.isRead !== want.isRead || m.flagStatus !== want.flagStatus || m.importance !== want.importance) wrong.push(`isRead ${m.isRead} flag ${m.flagStatus} importance ${m.importance}`);
      for (const action of want.once) {
        const times = action === 'webhook' ? hook.hits.get(id) ?? 0 : mutations.get(`${id}:${action === 'copyTo' ? 'copy' : 'forward'}`) ?? 0;
        if (times > 1) (doubled++, wrong.push(`${action} ${times} times`));
        if (times === 0) {
          if (reported.has(`${id}:${action}`)) reportedUnsure++;
          else (lost++, wrong.push(`${action} never happened, not reported`));
        }
      }
      if (wrong.length === 0) survived++;
      else problems.push(`${m.subject}: ${wrong.join('; ')}`);
    }
    const repeats = earlyRepeats(specs, logs.graph);
    const all429 = logs.graph.filter((e) => e.status === 429).length;
    const concurrencyRefusals = all429 - fired['429'];
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} messages differ from the rules' outcome`);
    assert.deepEqual(repeats.early, [], 'no request is sent again before its Retry-After');
    assert.ok(repeats.checked > 0, 'the Retry-After check saw retried requests');
    assert.equal(concurrencyRefusals, 0, 'never more than 4 requests in flight for the mailbox (the sandbox refuses the 5th with 429 ApplicationThrottled)');
    for (const kind of ['429', '503', '500', '502', '504', 'reset', 'malformed', 'truncated', 'latency'] as const) assert.ok(fired[kind] > 0, `the ${kind} fault fired`);
    assert.ok(tokenErrorsFired > 0, `the token endpoint was down for a while: ${JSON.stringify(logs.tokens)}`);
    // The grant survived the storm.
    await h.rt.auth.getAccessToken({ forceRefresh: true });
    const retriesSeen = logs.graph.filter((e) => e.status >= 429).length;
    return { messages: options.messages, faultsInjected: injected, faultsFired: { ...fired }, tokenErrorsFired, runs, survived, lost, doubled, reportedUnsure, retriesSeen, earlyRepeats: repeats.early.length, concurrencyRefusals };
  } finally {
    await h.close();
    await hook.close();
  }
}
