import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { buildIsCurrent } from '../../src/cli/build-check.js';
import { BIN } from '../helpers/cli.ts';
import { REPO } from '../helpers/harness.ts';

/** A package root with src/cli/main.ts, src/sub/b.ts and their builds, each built a minute after its source. */
function tree() {
  const root = mkdtempSync(path.join(tmpdir(), 'ma-bin-'));
  const t = Date.now() / 1000 - 3600;
  for (const rel of ['cli/main', 'sub/b']) {
    for (const [file, at] of [[`src/${rel}.ts`, t], [`dist/src/${rel}.js`, t + 60]] as const) {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      writeFileSync(path.join(root, file), '');
      utimesSync(path.join(root, file), at, at);
    }
  }
  writeFileSync(path.join(root, 'src/types.d.ts'), '');
  return { root, t };
}

describe('bin.js runs the build in dist/ only when it is current', () => {
  test('current when every source has an older-or-equal-aged build; a newer source, a missing build or MAILBOX_AGENT_SOURCES=1 say no', () => {
    const { root, t } = tree();
    assert.equal(buildIsCurrent(root, {}), true, '.d.ts files need no build');
    assert.equal(buildIsCurrent(root, { MAILBOX_AGENT_SOURCES: '1' }), false);
    utimesSync(path.join(root, 'src/sub/b.ts'), t + 120, t + 120);
    assert.equal(buildIsCurrent(root, {}), false, 'an edited source runs through tsx');
    utimesSync(path.join(root, 'dist/src/sub/b.js'), t + 180, t + 180);
    assert.equal(buildIsCurrent(root, {}), true, 'rebuilt');
    writeFileSync(path.join(root, 'src/new.ts'), '');
    assert.equal(buildIsCurrent(root, {}), false, 'a source without a build');
    assert.equal(buildIsCurrent(path.join(root, 'missing'), {}), false);
  });

  test('an installed package (the build and no .ts sources) runs the build whatever the mtimes; without its entry it does not', () => {
    const { root, t } = tree();
    rmSync(path.join(root, 'src/cli/main.ts'));
    rmSync(path.join(root, 'src/sub/b.ts'));
    writeFileSync(path.join(root, 'src/cli/bin.js'), '');
    utimesSync(path.join(root, 'src/cli/bin.js'), t + 600, t + 600);
    assert.equal(buildIsCurrent(root, {}), true);
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
    const usual = mode({});
    assert.equal(usual.loaded, buildIsCurrent(REPO, {}) ? 'compiled' : 'tsx');
    assert.equal(usual.help, sources.help);
    assert.match(usual.help, /run <job>/);
  });
});
