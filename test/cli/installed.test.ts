import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { cli } from '../helpers/cli.ts';
import { freePort } from '../helpers/server.ts';
import { REPO, signIn, startHarness, type Harness } from '../helpers/harness.ts';
import { installedPackage, type InstalledPackage } from '../helpers/installed-package.ts';

// Regression: every `npx mailbox-agent …` printed nothing and exited 0, because main.ts ran only when the path
// that started it ended in bin.js or main.ts, and npx, npm link, npm install -g and node_modules/.bin start a
// symlink named mailbox-agent. Here the tarball of `npm pack`, installed with --omit=dev, runs through that symlink
// from a working directory that is neither the checkout nor the install prefix.
describe('the packed package, installed with --omit=dev, through node_modules/.bin/mailbox-agent', () => {
  let pkg: InstalledPackage;
  let h: Harness;
  before(async () => {
    pkg = await installedPackage();
    h = await startHarness();
  });
  after(() => h?.close());

  test('the bin is a symlink npm made, and the package holds the bundle, the views and the example files, not the tests or the sources', () => {
    assert.ok(lstatSync(pkg.bin).isSymbolicLink());
    for (const file of ['dist/src/cli/main.js', 'dist/src/build-stamp.json', 'src/cli/bin.js', 'src/cli/build-check.js', 'views/layout.eta', 'agent.config.yaml', '.env.example']) {
      assert.ok(existsSync(path.join(pkg.dir, file)), `${file} is in the tarball`);
    }
    assert.ok(readdirSync(path.join(pkg.dir, 'dist/src/chunks')).some((f) => f.endsWith('.js')), 'the bundle\'s chunks are in the tarball');
    // The bundle, not a file per module: src/web/app.ts is inside a chunk (views/ is found from there).
    for (const absent of ['test', 'bench', 'data', 'scripts', 'src/cli/main.ts', 'dist/test', 'dist/src/web/app.js']) {
      assert.ok(!existsSync(path.join(pkg.dir, absent)), `${absent} is not in the tarball`);
    }
    assert.ok(!existsSync(path.join(pkg.prefix, 'node_modules/typescript')), '--omit=dev: no dev dependency');
    for (const elsewhere of [REPO, pkg.prefix]) assert.ok(path.relative(elsewhere, h.dir).startsWith('..'), `the working directory is outside ${elsewhere}`);
  });

  test('--help prints the usage, from the bundle', async () => {
    // A preload that writes down, as the process exits, what bin.js loaded (the build or the sources through tsx).
    const tmp = mkdtempSync(path.join(tmpdir(), 'ma-installed-'));
    const marker = path.join(tmp, 'loaded');
    const preload = path.join(tmp, 'loaded.mjs');
    writeFileSync(preload, `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(marker)}, String(globalThis[Symbol.for('mailbox-agent.loaded')])));\n`);
    const run = spawn(pkg.bin, ['--help'], { cwd: h.dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_OPTIONS: `--import=${pathToFileURL(preload).href}` } });
    let stdout = '';
    run.stdout.on('data', (d) => (stdout += d));
    const code = await new Promise((resolve) => run.on('close', resolve));
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: mailbox-agent <command> \[options\]/);
    assert.match(stdout, /run <job> \[--dry-run\] \[--json\]/);
    assert.equal(readFileSync(marker, 'utf8'), 'compiled', 'the installed binary runs the bundle in dist/, never the sources through tsx');
  });

  test('status --json and a sandbox run --json answer from another working directory', async () => {
    const signedOut = await cli(['status', '--json'], h.env, h.dir);
    assert.equal(signedOut.code, 2, signedOut.stderr);
    assert.equal(JSON.parse(signedOut.stdout).state, 'signed-out');

    await signIn(h);
    const run = await cli(['run', 'triage', '--json'], h.env, h.dir);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.job, 'triage');
    assert.equal(result.ok, true);
    assert.ok(result.actions.length > 0 && result.actions.every((a: { result: string }) => a.result === 'done'));

    const status = await cli(['status', '--json'], h.env, h.dir);
    assert.equal(status.code, 0, status.stderr);
    const json = JSON.parse(status.stdout);
    assert.equal(json.state, 'ready');
    assert.equal(json.account.upn, 'alice@contoso.test');
    assert.equal(json.jobs.find((j: { name: string }) => j.name === 'triage').lastResult.ok, true);
  });

  test('custom job modules, .js and .ts, run from the bundle, in a folder with no package.json', async () => {
    await signIn(h);
    const dir = mkdtempSync(path.join(tmpdir(), 'ma-installed-jobs-'));
    // A person's folder has no package.json: the .ts module is TypeScript with ES exports all the same (before, Node
    // took it for CommonJS and the run failed with "Unexpected identifier").
    writeFileSync(path.join(dir, 'count.js'), 'export default {\n  async run(ctx) {\n    await ctx.mailbox.folder(\'inbox\');\n    ctx.report.examined = 7;\n  },\n};\n');
    writeFileSync(path.join(dir, 'count.ts'), 'interface Ctx { report: { examined: number } }\nconst examined: number = 11;\nexport default {\n  async run(ctx: Ctx): Promise<void> {\n    ctx.report.examined = examined;\n  },\n};\n');
    const jobs = path.join(dir, 'agent.config.yaml');
    writeFileSync(jobs, 'jobs:\n  - name: count-js\n    module: ./count.js\n    schedule: "0 * * * *"\n  - name: count-ts\n    module: ./count.ts\n    schedule: "0 * * * *"\n');
    for (const [job, examined] of [['count-js', 7], ['count-ts', 11]] as const) {
      const run = await cli(['run', job, '--json'], { ...h.env, AGENT_CONFIG: jobs }, h.dir);
      assert.equal(run.code, 0, `${job}: ${run.stdout}${run.stderr}`);
      const result = JSON.parse(run.stdout);
      assert.equal(result.examined, examined, run.stdout);
    }
  });

  test('start serves the web UI from the installed package (its views) and stops on SIGTERM', async () => {
    const port = await freePort();
    const agent = spawn(pkg.bin, ['start'], {
      cwd: h.dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...h.env, HOST: '127.0.0.1', PORT: String(port), MS_REDIRECT_URI: `http://127.0.0.1:${port}/auth/callback` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    agent.stdout.on('data', (d) => (output += d));
    agent.stderr.on('data', (d) => (output += d));
    let exitCode: number | null | undefined;
    const exited = new Promise<number | null>((resolve) => agent.on('exit', (code) => resolve((exitCode = code))));
    const answers = async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok === true;
    while (exitCode === undefined && !(await answers())) await sleep(100);
    try {
      assert.equal(exitCode, undefined, `start exited: ${output}`);
      const page = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<title>[^<]*mailbox-agent/i);
    } finally {
      agent.kill('SIGTERM');
    }
    assert.equal(await exited, 0, output);
  });
});
