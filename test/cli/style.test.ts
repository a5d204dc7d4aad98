import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mark, useColour } from '../../src/cli/style.ts';

const tty = { isTTY: true } as NodeJS.WriteStream;
const pipe = { isTTY: false } as NodeJS.WriteStream;

test('colour only on a terminal, and never with NO_COLOR or TERM=dumb', () => {
  assert.equal(useColour(tty, {}), true);
  assert.equal(useColour(pipe, {}), false);
  assert.equal(useColour(tty, { NO_COLOR: '1' }), false);
  assert.equal(useColour(tty, { TERM: 'dumb' }), false);
});

test('the checklist marks are plain text without colour', () => {
  assert.equal(mark(true, false), '✓');
  assert.equal(mark(false, false), '✗');
  assert.match(mark(true, true), /\u001b\[32m✓\u001b\[39m/);
});

test('progress is one line redrawn in place, cleared at the end', async () => {
  // In-process: a terminal's redraws are checked on a fake TTY stream, which the binary in a pipe never draws.
  const { progressLine } = await import('../../src/cli/main.ts');
  let out = '';
  const stream = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream;
  const line = progressLine(stream, 'triage');
  line.update({ examined: 1000, actions: new Array(400) });
  line.update({ examined: 12000, actions: new Array(4810) });
  line.done();
  assert.equal(out, '\rtriage: 1,000 messages examined, 400 actions…\u001b[K\rtriage: 12,000 messages examined, 4,810 actions…\u001b[K\r\u001b[K');
  assert.ok(!out.includes('\n'), 'no new lines: no flood');
});
