import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BUILD_STAMP } from '../../src/cli/build-check.js';
import { installedPackage } from '../helpers/installed-package.ts';
import { MODULE_RECORDER, loadedUrls } from '../helpers/module-recorder.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Loaded {
  code: number | null;
  stdout: string;
  /** Every module URL the process resolved (node: built-ins too). */
  loaded: string[];
  /** The packages whose code it loaded: from node_modules, and for the bundle those its loaded files hold. */
  packages: Set<string>;
}

function record(child: ChildProcess, packagesOf: (loaded: string[]) => Set<string>): Promise<Loaded> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => {
    const loaded = loadedUrls(stderr);
    resolve({ code, stdout, loaded, packages: packagesOf(loaded) });
  }));
}

const packageOf = (url: string) => /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(url)?.[1];
/** Packages loaded from node_modules; the installed package's own files (node_modules/mailbox-agent) are not one. */
const nodeModules = (loaded: string[]) => new Set(loaded.map(packageOf).filter((p): p is string => Boolean(p) && p !== 'mailbox-agent'));

/** main() of the sources through tsx, as `MAILBOX_AGENT_SOURCES=1 mailbox-agent` runs it. */
function runMain(args: string[], env: Record<string, string>, cwd: string): Promise<Loaded> {
  const script = `import { register } from 'node:module'; register(${JSON.stringify(MODULE_RECORDER)}); const { main } = await import(${JSON.stringify(path.join(REPO, 'src/cli/main.ts'))}); process.exitCode = await main(${JSON.stringify(args)});`;
  // tsx by its path: the command runs in a directory of its own, outside the checkout.
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return record(child, nodeModules);
}

/**
 * The installed package's bin, as a user starts it (the bundle: test/cli/installed.test.ts checks that it is),
 * with the recorder given as NODE_OPTIONS. A file of the bundle counts as loading the packages its stamp says it holds.
 */
async function runInstalled(args: string[], env: Record<string, string>, cwd: string): Promise<Loaded> {
  const pkg = await installedPackage();
  const outputs = (JSON.parse(readFileSync(path.join(pkg.dir, BUILD_STAMP), 'utf8')) as { outputs: Record<string, string[]> }).outputs;
  const preload = path.join(cwd, 'record-loads.mjs');
  writeFileSync(preload, `import { register } from 'node:module';\nregister(${JSON.stringify(MODULE_RECORDER)});\n`);
  const child = spawn(pkg.bin, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, NODE_OPTIONS: `--import=${pathToFileURL(preload).href}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const inBundle = (url: string) => (url.startsWith('file:') ? path.relative(pkg.dir, fileURLToPath(url)).split(path.sep).join('/') : '');
  return record(child, (loaded) => new Set([...nodeModules(loaded), ...loaded.flatMap((url) => outputs[inBundle(url)] ?? [])]));
}

for (const [how, run] of [['the sources through tsx', runMain], ['the installed bundle', runInstalled]] as const) {
  describe(`the CLI loads what each command needs: ${how}`, () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ma-lazy-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('--help and <command> --help load no configuration, zod, pino, express or runtime', async () => {
      for (const args of [['--help'], ['status', '--help']]) {
        const { code, stdout, loaded, packages } = await run(args, { DATA_DIR: dir }, dir);
        assert.equal(code, 0);
        assert.match(stdout, /Usage: mailbox-agent/);
        for (const heavy of ['zod', 'pino', 'express', 'dotenv', 'openid-client', 'undici']) assert.ok(!packages.has(heavy), `${args.join(' ')} loaded ${heavy}`);
        assert.ok(!loaded.some((u) => /src\/(config\/index|cli\/runtime)\.ts$|dist\/src\/config\//.test(u)), `${args.join(' ')} loaded the configuration or the runtime`);
        if (run === runInstalled) {
          assert.deepEqual([...packages], [], `${args.join(' ')} loaded code of a package`);
          const files = loaded.filter((u) => u.startsWith('file:')).map((u) => path.basename(fileURLToPath(u)));
          assert.ok(files.includes('main.js') && files.length <= 6, `the bundle's --help loads its entry and a few chunks, not modules one by one: ${files.join(' ')}`);
        }
      }
    });

    it('status answers from the store without starting or asking the sandbox, and loads no web stack or HTTP client', async () => {
      writeFileSync(path.join(dir, 'agent.config.yaml'), 'jobs:\n  - name: triage\n    type: inbox-rules\n    schedule: "*/5 * * * *"\n    rules:\n      - name: news\n        match: { fromDomain: news.example.com }\n        actions: [{ markRead: true }]\n');
      // MS_CLIENT_ID unset: the sandbox target. Nothing listens on SANDBOX_PORT; before, status started a sandbox here.
      const env = { DATA_DIR: dir, AGENT_CONFIG: path.join(dir, 'agent.config.yaml'), SANDBOX_PORT: '1', STORE_URL: `sqlite://${path.join(dir, 'agent.sqlite')}` };
      const { code, stdout, loaded, packages } = await run(['status', '--json'], env, dir);
      assert.equal(code, 2, stdout);
      const status = JSON.parse(stdout) as { target: string; state: string; jobs: { name: string; nextRun: string | null }[] };
      assert.equal(status.target, 'sandbox');
      assert.equal(status.state, 'signed-out');
      assert.deepEqual(status.jobs.map((j) => j.name), ['triage']);
      assert.ok(status.jobs[0]!.nextRun);
      assert.ok(!existsSync(path.join(dir, 'sandbox')), 'status made the sandbox\'s files: it started a sandbox');
      assert.ok(packages.has('sqlite3'), `the store's driver (STORE_URL) is seen: ${[...packages].join(' ')}`);
      if (run === runInstalled) {
        const inlined = [...packages].filter((p) => !nodeModules(loaded).has(p));
        assert.ok(inlined.length > 0, 'packages inlined in the bundle\'s files are seen too (the stamp names them)');
      }
      for (const heavy of ['express', 'undici', 'node-forge', '@azure/msal-node', 'eta']) assert.ok(!packages.has(heavy), `status loaded ${heavy}`);
    });
  });
}
