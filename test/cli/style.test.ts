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
