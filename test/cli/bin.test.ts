import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { buildIsCurrent } from '../../src/cli/build-check.js';
import { BIN } from '../helpers/cli.ts';
import { REPO } from '../helpers/harness.ts';

/** A package root with src/a.ts, src/sub/b.ts and their builds, each built a minute after its source. */
function tree() {
  const root = mkdtempSync(path.join(tmpdir(), 'ma-bin-'));
  const t = Date.now() / 1000 - 3600;
  for (const rel of ['a', 'sub/b']) {
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
