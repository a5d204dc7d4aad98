/**
 * Two instances: two installed `mailbox-agent start` processes sharing a Redis or PostgreSQL store (throwaway servers
 * from test/helpers/servers.ts), a job scheduled every few seconds, mail arriving meanwhile, one instance killed with
 * -9 in the middle of a run, and a third process's `run` from a shell. Read from the processes' own logs (run
 * started/finished with their times) and the sandbox's: no two runs of the job overlap, no scheduled fire runs twice,
 * nothing is done twice, the survivor carries on within the store lock's lease, and the grant stays alive.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cli } from '../helpers/cli.ts';
import { signIn, startHarness } from '../helpers/harness.ts';
import { installedPackage } from '../helpers/installed-package.ts';
import { freePort, startPostgres, startRedis } from '../helpers/servers.ts';
import { ALICE, webhookServer } from './crash-scenario.ts';

/** Seconds between fires of the job (node-cron's six fields, seconds first). */
const EVERY_S = 4;

interface Instance {
  name: string;
  child: ChildProcess;
  lines: string[];
  exited: Promise<void>;
}

interface RunSpan {
  who: string;
  run: string;
  start: number;
  end?: number;
}

function startInstance(name: string, bin: string, env: Record<string, string>, cwd: string): Instance {
  const child = spawn(bin, ['start'], { cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const lines: string[] = [];
  let partial = '';
  const take = (d: Buffer) => {
    const text = partial + String(d);
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { name, child, lines, exited };
}

/** Runs of the job from a process's JSON log lines: who, run id, start and end times. */
function spansOf(who: string, lines: string[]): RunSpan[] {
  const spans = new Map<string, RunSpan>();
  for (const line of lines) {
    let entry: { msg?: string; run?: string; job?: string; time?: number };
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (entry.job !== 'two' || !entry.run || typeof entry.time !== 'number') continue;
    if (entry.msg === 'run started') spans.set(entry.run, { who, run: entry.run, start: entry.time });
    if ((entry.msg === 'run finished' || entry.msg === 'run failed') && spans.has(entry.run)) spans.get(entry.run)!.end = entry.time;
  }
  return [...spans.values()];
}

export interface InstancesFigures {
  backend: string;
  fires: number;
  runs: number;
  messages: number;
  kills: number;
  overlaps: number;
  firesRunTwice: number;
  doubled: number;
  lost: number;
  survivorRanAfterKillMs: number;
  cliRun: string;
}

export async function instancesProof(backend: 'redis' | 'postgres', options: { firesBeforeKill: number }): Promise<InstancesFigures> {
  const server = backend === 'redis' ? await startRedis() : await startPostgres();
  const hook = await webhookServer();
  const jobs = `jobs:\n  - name: two\n    type: inbox-rules\n    schedule: "*/${EVERY_S} * * * * *"\n    folder: inbox\n    backfill: false\n    rules:\n      - name: two\n        match: { subjectContains: proof-two }\n        actions: [ { categorize: [Two] }, { flag: true }, { webhook: "${hook.url}" } ]\n`;
  const h = await startHarness({ jobsFile: jobs, env: { STORE_URL: server.url, TOKEN_KEY: randomBytes(32).toString('base64'), LOG_LEVEL: 'info' }, sandboxOptions: { accessTokenLifetimeSec: 6 } });
  const instances: Instance[] = [];
  try {
    await signIn(h);
    h.sandbox.admin.setRevokeOnReuse(true);
    // The first run only records where the folder is (backfill: false); from then on, each new message is acted on.
    const first = await h.rt.runner.run('two');
    assert.equal(first.ok, true, first.error);
    const bin = (await installedPackage()).bin;
    for (const name of ['A', 'B']) instances.push(startInstance(name, bin, { ...h.env, PORT: String(await freePort()) }, h.dir));
    const delivered: string[] = [];
    const deliver = () => delivered.push(h.sandbox.admin.deliver(ALICE, { subject: `proof-two ${delivered.length + 1}`, from: 'someone@contoso.test' }).immutableId);
    // Fires with mail to act on, and a third process's run from a shell in between.
    let cliRun = '';
    for (let i = 0; i < options.firesBeforeKill; i++) {
      deliver();
      if (i === 1) {
        const out = await cli(['run', 'two', '--json'], h.env, h.dir);
        cliRun = out.code === 0 ? 'ran' : /already running in another process/.test(out.stderr) ? 'refused: busy' : `exit ${out.code}: ${out.stderr.trim().slice(-1500)}`;
        assert.ok(cliRun === 'ran' || cliRun === 'refused: busy', cliRun);
      }
      await sleep(EVERY_S * 1000);
    }
    // Kill -9 whichever instance is in the middle of a run (runs are made slow so one surely is).
    h.sandbox.admin.setLatency(400);
    deliver();
    let victim: Instance | undefined;
    for (let i = 0; !victim; i++) {
      assert.ok(i < 3000, 'an instance started a run');
      victim = instances.find((x) => spansOf(x.name, x.lines).some((s) => s.end === undefined));
      if (!victim) await sleep(5);
    }
    process.kill(-victim.child.pid!, 'SIGKILL');
    await victim.exited;
    const killedAt = Date.now();
    h.sandbox.admin.setLatency(0);
    const survivor = instances.find((x) => x !== victim)!;
    // The survivor carries on: a run of its own finishes after the kill, within the store lock's lease (Redis: 30 s).
    deliver();
    let survivorRanAfterKillMs = -1;
    for (let i = 0; survivorRanAfterKillMs < 0; i++) {
      assert.ok(i < 60 * 20, 'the survivor ran the job within a minute of the kill');
      const done = spansOf(survivor.name, survivor.lines).find((s) => s.start > killedAt && s.end !== undefined);
      if (done) survivorRanAfterKillMs = done.end! - killedAt;
      else await sleep(50);
    }
    deliver();
    await sleep(EVERY_S * 1000 * 2);
    survivor.child.kill('SIGTERM');
    await survivor.exited;
    writeFileSync(path.join(h.dir, 'instances.log'), instances.map((x) => `== ${x.name}\n${x.lines.join('\n')}`).join('\n'));

    // No two runs overlap; no fire ran twice (the CLI run is not a fire).
    const spans = instances.flatMap((x) => spansOf(x.name, x.lines)).sort((a, b) => a.start - b.start);
    let overlaps = 0;
    for (let i = 1; i < spans.length; i++) {
      const previousEnd = spans[i - 1]!.end ?? (spans[i - 1]!.who === victim.name ? killedAt : Infinity);
      if (spans[i]!.start < previousEnd) overlaps++;
    }
    const fires = new Map<number, number>();
    for (const s of spans) fires.set(Math.floor(s.start / (EVERY_S * 1000)), (fires.get(Math.floor(s.start / (EVERY_S * 1000))) ?? 0) + 1);
    const firesRunTwice = [...fires.values()].filter((n) => n > 1).length;
    // Every message acted on once.
    let doubled = 0;
    let lost = 0;
    const now = new Map(h.sandbox.admin.messages(ALICE, 'inbox').map((m) => [m.immutableId, m]));
    for (const id of delivered) {
      const m = now.get(id);
      const hits = hook.hits.get(id) ?? 0;
      if (!m || m.flagStatus !== 'flagged' || !m.categories.includes('Two')) lost++;
      if (m && m.categories.filter((c) => c === 'Two').length > 1) doubled++;
      if (hits > 1) doubled++;
    }
    // The grant is alive: no refresh token was presented twice, and the store's one still refreshes.
    assert.ok(!h.sandbox.admin.tokenRequests().some((t) => t.aadsts === 70008), 'no refresh token was presented twice');
    await h.rt.auth.getAccessToken({ forceRefresh: true });
    return { backend, fires: fires.size, runs: spans.length, messages: delivered.length, kills: 1, overlaps, firesRunTwice, doubled, lost, survivorRanAfterKillMs, cliRun };
  } finally {
    for (const x of instances) if (x.child.exitCode === null && x.child.signalCode === null) process.kill(-x.child.pid!, 'SIGKILL');
    await h.close();
    await hook.close();
    await server.stop();
  }
}
