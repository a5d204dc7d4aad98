/**
 * What `status` and `run <job>` load and start, signed in against the sandbox (issue 15): the configuration without
 * zod, no openid-client while the access token is fresh, no pino while nothing is logged, no undici for `status`,
 * and no ICU (Intl, localeCompare) for schedules in UTC. Each command runs main() of the sources through tsx in a
 * process of its own, with a resolve hook that records every module it loads and a tripwire on ICU's entry points.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO, signIn, startHarness, type Harness } from '../helpers/harness.ts';
import { MODULE_RECORDER, loadedUrls } from '../helpers/module-recorder.ts';

/** Each first use of ICU's entry points is written to stderr as `ICU <what>`. */
const TRIPWIRE = `
const tell = (what) => process.stderr.write('ICU ' + what + '\\n');
for (const name of ['DateTimeFormat', 'Collator', 'NumberFormat', 'PluralRules', 'RelativeTimeFormat', 'ListFormat', 'Segmenter']) {
  const Real = Intl[name];
  Intl[name] = new Proxy(Real, { construct(target, args) { tell('Intl.' + name); return Reflect.construct(target, args); }, apply(target, self, args) { tell('Intl.' + name); return Reflect.apply(target, self, args); } });
}
for (const [proto, names] of [[String.prototype, ['localeCompare', 'toLocaleLowerCase', 'toLocaleUpperCase']], [Date.prototype, ['toLocaleString', 'toLocaleDateString', 'toLocaleTimeString']], [Number.prototype, ['toLocaleString']]]) {
  for (const name of names) {
    const real = proto[name];
    proto[name] = function (...args) { tell(name); return real.apply(this, args); };
  }
}`;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  packages: Set<string>;
  icu: string[];
}

function runMain(args: string[], env: Record<string, string>, cwd: string): Promise<Ran> {
  const script = `${TRIPWIRE}
import { register } from 'node:module'; register(${JSON.stringify(MODULE_RECORDER)});
const { main } = await import(${JSON.stringify(path.join(REPO, 'src/cli/main.ts'))});
process.exitCode = await main(${JSON.stringify(args)});`;
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => {
    const lines = stderr.split('\n');
    const packages = new Set(loadedUrls(stderr).map((l) => /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(l)?.[1]).filter((p): p is string => Boolean(p)));
    resolve({ code, stdout, stderr: lines.filter((l) => !l.startsWith('LOADED ') && !l.startsWith('ICU ')).join('\n'), packages, icu: [...new Set(lines.filter((l) => l.startsWith('ICU ')).map((l) => l.slice(4)))] });
  }));
}

const NOT_FOR_STATUS = ['zod', 'dotenv', 'openid-client', 'jose', 'oauth4webapi', 'pino', 'undici', 'express', '@azure/msal-node', 'node-forge'];

describe('status and a run with no new mail load and start only what they use', () => {
  let h: Harness;
  before(async () => {
    // The repository's jobs file (triage every 5 minutes, agenda on weekdays), no timezone: the schedules run in UTC.
    h = await startHarness({ env: { LOG_LEVEL: 'info' } });
    await signIn(h);
  });
  after(() => h.close());

  it('run --json with a fresh access token: no openid-client, pino (nothing logged), zod or ICU', async () => {
    const first = await runMain(['run', 'triage', '--json'], h.env, h.dir);
    assert.equal(first.code, 0, first.stderr);
    assert.ok((JSON.parse(first.stdout) as { actions: unknown[] }).actions.length > 0, 'the first run acted, so the audit log has entries');
    const quiet = await runMain(['run', 'triage', '--json'], h.env, h.dir);
    assert.equal(quiet.code, 0, quiet.stderr);
    const result = JSON.parse(quiet.stdout) as { ok: boolean; examined: number; graphRequests: number };
    assert.equal(result.ok, true);
    assert.equal(result.examined, 0);
    for (const heavy of ['zod', 'dotenv', 'openid-client', 'jose', 'oauth4webapi', 'pino', 'express', '@azure/msal-node', 'node-forge']) {
      assert.ok(!quiet.packages.has(heavy), `run loaded ${heavy}: ${[...quiet.packages].join(' ')}`);
    }
    assert.ok(quiet.packages.has('undici'), 'the sandbox is reached through undici (its CA, for its origin only)');
    assert.deepEqual(quiet.icu, [], 'run started ICU');
  });

  it('status and status --json: the store, the jobs file and the account, nothing that sends, logs or starts ICU', async () => {
    for (const args of [['status', '--json'], ['status']]) {
      const ran = await runMain(args, h.env, h.dir);
      assert.equal(ran.code, 0, ran.stderr);
      if (args.includes('--json')) {
        const status = JSON.parse(ran.stdout) as { state: string; timezone: { name: string }; jobs: { name: string; nextRun: string }[]; recentActions: unknown[] };
        assert.equal(status.state, 'ready');
        assert.equal(status.timezone.name, 'UTC');
        assert.deepEqual(status.jobs.map((j) => j.name), ['triage', 'agenda']);
        assert.ok(status.jobs.every((j) => Date.parse(j.nextRun) > Date.now()));
        assert.ok(status.recentActions.length > 1, 'the audit log was sorted');
      } else {
        assert.match(ran.stdout, /^job triage: "\*\/5 \* \* \* \*", next \d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z, last \S+ ok$/m);
      }
      for (const heavy of NOT_FOR_STATUS) assert.ok(!ran.packages.has(heavy), `${args.join(' ')} loaded ${heavy}: ${[...ran.packages].join(' ')}`);
      assert.deepEqual(ran.icu, [], `${args.join(' ')} started ICU`);
    }
  });
});
