import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Records every module the command loads (a resolve hook registered after tsx's) and prints them on stderr as
 * `LOADED <url>`; the command's own output is left as it is.
 */
const RECORDER = `data:text/javascript,${encodeURIComponent(`
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  process.stderr.write('LOADED ' + r.url + '\\n');
  return r;
}`)}`;

function runMain(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number | null; stdout: string; loaded: string[] }> {
  const script = `import { register } from 'node:module'; register(${JSON.stringify(RECORDER)}); const { main } = await import(${JSON.stringify(path.join(REPO, 'src/cli/main.ts'))}); process.exitCode = await main(${JSON.stringify(args)});`;
  // tsx by its path: the command runs in a directory of its own, outside the checkout.
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({
    code, stdout, loaded: stderr.split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice(7)),
  })));
}

const packageOf = (url: string) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];

describe('the CLI loads what each command needs', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-lazy-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('--help and <command> --help load no configuration, zod, pino, express or runtime', async () => {
    for (const args of [['--help'], ['status', '--help']]) {
      const { code, stdout, loaded } = await runMain(args, { DATA_DIR: dir }, dir);
      assert.equal(code, 0);
      assert.match(stdout, /Usage: mailbox-agent/);
      const packages = new Set(loaded.map(packageOf).filter(Boolean));
      for (const heavy of ['zod', 'pino', 'express', 'dotenv', 'openid-client', 'undici']) assert.ok(!packages.has(heavy), `${args.join(' ')} loaded ${heavy}`);
      assert.ok(!loaded.some((u) => /src\/(config\/index|cli\/runtime)\.ts$/.test(u)), `${args.join(' ')} loaded the configuration or the runtime`);
    }
  });

  it('status answers from the store without starting or asking the sandbox, and loads no web stack or HTTP client', async () => {
    writeFileSync(path.join(dir, 'agent.config.yaml'), 'jobs:\n  - name: triage\n    type: inbox-rules\n    schedule: "*/5 * * * *"\n    rules:\n      - name: news\n        match: { fromDomain: news.example.com }\n        actions: [{ markRead: true }]\n');
    // MS_CLIENT_ID unset: the sandbox target. Nothing listens on SANDBOX_PORT; before, status started a sandbox here.
    const env = { DATA_DIR: dir, AGENT_CONFIG: path.join(dir, 'agent.config.yaml'), SANDBOX_PORT: '1', STORE_URL: `sqlite://${path.join(dir, 'agent.sqlite')}` };
    const { code, stdout, loaded } = await runMain(['status', '--json'], env, dir);
    assert.equal(code, 2, stdout);
    const status = JSON.parse(stdout) as { target: string; state: string; jobs: { name: string; nextRun: string | null }[] };
    assert.equal(status.target, 'sandbox');
    assert.equal(status.state, 'signed-out');
    assert.deepEqual(status.jobs.map((j) => j.name), ['triage']);
    assert.ok(status.jobs[0]!.nextRun);
    assert.ok(!existsSync(path.join(dir, 'sandbox')), 'status made the sandbox\'s files: it started a sandbox');
    const packages = new Set(loaded.map(packageOf).filter(Boolean));
    for (const heavy of ['express', 'undici', 'node-forge', '@azure/msal-node', 'eta']) assert.ok(!packages.has(heavy), `status loaded ${heavy}`);
  });
});
