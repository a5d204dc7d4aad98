import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { COMMAND_HELP } from '../../src/cli/help.ts';
import { cli } from '../helpers/cli.ts';

const DESIGN_COMMANDS = ['start', 'run', 'status', 'signin', 'signout', 'doctor', 'cert', 'policy', 'sandbox'];

test('every command of the contract has help with its usage', () => {
  for (const command of DESIGN_COMMANDS) {
    assert.match(COMMAND_HELP[command] ?? '', new RegExp(`^Usage: mailbox-agent ${command}`), command);
  }
});

test('the real binary prints a command\'s help and exits 0, without reading any configuration', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-help-'));
  const out = await cli(['run', '--help'], { PORT: 'not-a-port' }, dir);
  assert.equal(out.code, 0);
  assert.match(out.stdout, /Usage: mailbox-agent run <job> \[--dry-run\] \[--json\]/);
  assert.match(out.stdout, /Examples:/);
  assert.match(out.stdout, /Exit status: 0 ok, 1 failed, 2 a person is needed/);
  const top = await cli([], {}, dir);
  assert.equal(top.code, 64, 'no command is a usage error');
  assert.match(top.stdout, /Commands:/);
});
