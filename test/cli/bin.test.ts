import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { BUILD_STAMP, buildIsCurrent } from '../../src/cli/build-check.js';
import { BIN } from '../helpers/cli.ts';
import { REPO } from '../helpers/harness.ts';

const BUILD = path.join(REPO, 'scripts/build.mjs');

/**
 * A package root shaped like the checkout: bin.js and build-check.js, the four entries scripts/build.mjs bundles
 * (main() prints `said`), src/sub/b.ts imported by main.ts, a package it inlines (node_modules/fake-dep) and the
 * checkout's node_modules for tsx; not yet built.
 */
function tree(said = 'v1') {
  const root = mkdtempSync(path.join(tmpdir(), 'ma-bin-'));
  const files: Record<string, string> = {
    'package.json': JSON.stringify({ name: 'tree', type: 'module' }),
    'src/cli/main.ts': `import { b } from '../sub/b.ts';\nimport dep from 'fake-dep';\nexport async function main(): Promise<number> {\n  console.log(${JSON.stringify(said)}, b(), dep);\n  return 0;\n}\n`,
    'src/cli/server.ts': 'export const server = 1;\n',
    'src/config/index.ts': 'export const config = 1;\n',
    'src/config/logger.ts': 'export const logger = 1;\n',
    'src/sub/b.ts': "export const b = (): string => 'b';\n",
    'src/types.d.ts': 'export type T = string;\n',
    'node_modules/fake-dep/package.json': JSON.stringify({ name: 'fake-dep', version: '1.0.0', main: 'index.js' }),
    'node_modules/fake-dep/index.js': "module.exports = 'dep';\n",
  };
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  for (const file of ['bin.js', 'build-check.js']) copyFileSync(path.join(REPO, 'src/cli', file), path.join(root, 'src/cli', file));
  symlinkSync(path.join(REPO, 'node_modules/tsx'), path.join(root, 'node_modules/tsx'));
  // Older than anything the test writes later, whatever the clock's granularity.
  const t = Date.now() / 1000 - 3600;
  for (const file of Object.keys(files)) utimesSync(path.join(root, file), t, t);
  return { root, t };
}

const build = (root: string) => execFileSync(process.execPath, [BUILD, '--root', root], { stdio: 'pipe' });

/** Runs the tree's bin.js: what it printed and what it loaded ('compiled' for the bundle, 'tsx' for the sources). */
function runBin(root: string, env: Record<string, string> = {}) {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'ma-bin-')), 'rss');
  const r = spawnSync(process.execPath, ['--import', path.join(REPO, 'bench/peak-rss.mjs'), path.join(root, 'src/cli/bin.js')], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, MA_PEAK_RSS_FILE: file }, encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return { stdout: r.stdout.trim(), loaded: readFileSync(file, 'utf8').split(' ')[1] };
}

describe('bin.js runs the bundle in dist/ only when it was made from the sources as they are', () => {
  test('scripts/build.mjs writes the entry, its chunks and a stamp; bin.js runs it and prints what the sources say', () => {
    const { root } = tree();
    build(root);
    for (const file of ['dist/src/cli/main.js', 'dist/src/cli/server.js', 'dist/src/config/index.js', 'dist/src/config/logger.js', BUILD_STAMP]) {
      assert.ok(statSync(path.join(root, file), { throwIfNoEntry: false }), `${file} was built`);
    }
    const stamp = JSON.parse(readFileSync(path.join(root, BUILD_STAMP), 'utf8'));
    assert.deepEqual(Object.keys(stamp.sources).sort(), ['src/cli/main.ts', 'src/cli/server.ts', 'src/config/index.ts', 'src/config/logger.ts', 'src/sub/b.ts'], '.d.ts files are no source');
    assert.deepEqual(stamp.packages, { 'node_modules/fake-dep': '1.0.0' });
    assert.deepEqual(stamp.outputs['dist/src/cli/main.js'], ['fake-dep']);
    assert.equal(buildIsCurrent(root, {}), true);
    assert.deepEqual(runBin(root), { stdout: 'v1 b dep', loaded: 'compiled' });
    assert.equal(buildIsCurrent(root, { MAILBOX_AGENT_SOURCES: '1' }), false);
    assert.deepEqual(runBin(root, { MAILBOX_AGENT_SOURCES: '1' }), { stdout: 'v1 b dep', loaded: 'tsx' });
  });

  test('an edited source makes bin.js run the sources, until the next build', () => {
    const { root } = tree();
    build(root);
    writeFileSync(path.join(root, 'src/cli/main.ts'), readFileSync(path.join(root, 'src/cli/main.ts'), 'utf8').replace('"v1"', '"v2"'));
    assert.deepEqual(runBin(root), { stdout: 'v2 b dep', loaded: 'tsx' }, 'the edit runs, not the bundle made before it');
    build(root);
    assert.deepEqual(runBin(root), { stdout: 'v2 b dep', loaded: 'compiled' });
  });

  test('any change to the sources says no: another mtime (even older: a restored file), another size, an added or a removed file', () => {
    // Regression: the check was "no source newer than its build", so a source restored with its older mtime
    // (cp -p, tar, rsync -t, an editor's backup) ran the build made from the newer one.
    const { root, t } = tree();
    const b = path.join(root, 'src/sub/b.ts');
    build(root);
    utimesSync(b, t - 600, t - 600);
    assert.equal(buildIsCurrent(root, {}), false, 'an older mtime');
    build(root);
    const { mtime } = statSync(b);
    appendFileSync(b, '// edited\n');
    utimesSync(b, mtime, mtime);
    assert.equal(buildIsCurrent(root, {}), false, 'the same mtime, another size');
    build(root);
    writeFileSync(path.join(root, 'src/sub/new.ts'), '');
    assert.equal(buildIsCurrent(root, {}), false, 'a source the build has not seen');
    build(root);
    rmSync(path.join(root, 'src/sub/new.ts'));
    assert.equal(buildIsCurrent(root, {}), false, 'a source the build holds is gone');
    build(root);
    writeFileSync(path.join(root, 'src/more.d.ts'), '');
    assert.equal(buildIsCurrent(root, {}), true, '.d.ts files need no build');
    assert.equal(buildIsCurrent(path.join(root, 'missing'), {}), false);
  });

  test('another version of a package the bundle inlines says no, from npm\'s record of node_modules or else the package.json', () => {
    const { root } = tree();
    build(root);
    const manifest = path.join(root, 'node_modules/fake-dep/package.json');
    writeFileSync(manifest, JSON.stringify({ name: 'fake-dep', version: '1.0.1', main: 'index.js' }));
    assert.equal(buildIsCurrent(root, {}), false, 'fake-dep 1.0.1 is installed, the bundle holds 1.0.0');
    const record = (version: string) => writeFileSync(path.join(root, 'node_modules/.package-lock.json'), JSON.stringify({ packages: { 'node_modules/fake-dep': { version } } }));
    record('1.0.0');
    assert.equal(buildIsCurrent(root, {}), true, 'npm\'s record is read instead of each package.json');
    record('1.0.2');
    assert.equal(buildIsCurrent(root, {}), false);
    build(root);
    assert.equal(buildIsCurrent(root, {}), true);
  });

  test('builds that finish together (test processes packing at once) both succeed and leave one whole build', async () => {
    const { root } = tree();
    const once = () => new Promise<number | null>((resolve) => spawn(process.execPath, [BUILD, '--root', root], { stdio: 'ignore' }).on('close', resolve));
    assert.deepEqual(await Promise.all([once(), once(), once()]), [0, 0, 0]);
    assert.equal(buildIsCurrent(root, {}), true);
    assert.deepEqual(readdirSync(root).filter((name) => name.startsWith('dist.')), [], 'nothing left aside');
    assert.deepEqual(runBin(root), { stdout: 'v1 b dep', loaded: 'compiled' });
  });

  test('a build that fails leaves no build to run: the sources run', () => {
    const { root } = tree();
    build(root);
    writeFileSync(path.join(root, 'src/sub/b.ts'), 'export const b = (: string => ;\n');
    assert.throws(() => build(root));
    assert.equal(buildIsCurrent(root, {}), false);
    assert.deepEqual(readdirSync(root).filter((name) => name.startsWith('dist.building')), [], 'no half-made build is left');
    // One left by a build that was killed (its process is gone) is removed by the next build.
    mkdirSync(path.join(root, 'dist.building-999999999/src'), { recursive: true });
    writeFileSync(path.join(root, 'src/sub/b.ts'), "export const b = (): string => 'b';\n");
    build(root);
    assert.deepEqual(readdirSync(root).filter((name) => name.startsWith('dist.')), []);
    assert.equal(buildIsCurrent(root, {}), true);
  });

  test('an installed package (the build and no .ts sources) runs the build whatever the mtimes; without its entry it does not', () => {
    const { root, t } = tree();
    build(root);
    for (const file of ['src/cli/main.ts', 'src/cli/server.ts', 'src/config/index.ts', 'src/config/logger.ts', 'src/sub/b.ts']) rmSync(path.join(root, file));
    rmSync(path.join(root, BUILD_STAMP));
    utimesSync(path.join(root, 'src/cli/bin.js'), t + 600, t + 600);
    assert.equal(buildIsCurrent(root, {}), true);
    assert.deepEqual(runBin(root), { stdout: 'v1 b dep', loaded: 'compiled' });
    rmSync(path.join(root, 'dist/src/cli/main.js'));
    assert.equal(buildIsCurrent(root, {}), false, 'no entry, no build');
  });

  test('started through a symlink named mailbox-agent (npx, npm link, node_modules/.bin), it runs the command', () => {
    // Regression: main.ts ran only when the path that started it ended in bin.js or main.ts.
    const link = path.join(mkdtempSync(path.join(tmpdir(), 'ma-bin-')), 'mailbox-agent');
    symlinkSync(BIN, link);
    for (const env of [{}, { MAILBOX_AGENT_SOURCES: '1' }]) {
      const help = spawnSync(link, ['--help'], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, encoding: 'utf8' });
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, /^Usage: mailbox-agent <command>/);
      const unknown = spawnSync(link, ['frobnicate'], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, encoding: 'utf8' });
      assert.equal(unknown.status, 64, 'the exit status of main() is the process\'s');
    }
  });

  test('a package with neither the build nor the sources says so and how to fix it', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'ma-bin-'));
    mkdirSync(path.join(root, 'src/cli'), { recursive: true });
    for (const file of ['bin.js', 'build-check.js']) copyFileSync(path.join(REPO, 'src/cli', file), path.join(root, 'src/cli', file));
    const r = spawnSync(process.execPath, [path.join(root, 'src/cli/bin.js'), '--help'], { env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /neither its build \(dist\/src\/cli\/main\.js\) nor its sources.*Fix: reinstall/);
  });

  test('the real binary loads the build when it is current, else the sources; both answer the same', () => {
    const mode = (env: Record<string, string>) => {
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'ma-bin-')), 'rss');
      const r = spawnSync(process.execPath, ['--import', path.join(REPO, 'bench/peak-rss.mjs'), BIN, '--help'], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, MA_PEAK_RSS_FILE: file }, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return { loaded: readFileSync(file, 'utf8').split(' ')[1], help: r.stdout };
    };
    const sources = mode({ MAILBOX_AGENT_SOURCES: '1' });
    assert.equal(sources.loaded, 'tsx');
    const before = buildIsCurrent(REPO, {});
    const usual = mode({});
    // A source edited meanwhile (other work in the checkout) changes the answer; what ran is then either.
    if (before === buildIsCurrent(REPO, {})) assert.equal(usual.loaded, before ? 'compiled' : 'tsx');
    assert.equal(usual.help, sources.help);
    assert.match(usual.help, /run <job>/);
  });
});
