import { randomUUID } from 'node:crypto';
import type { JobRunResult } from './runner.ts';

/**
 * Action records per piece of text: ~250 bytes each, so pieces of ~25 KB. Not more: a string over V8's largest
 * regular object (128 KB) goes to the large-object space, where the pieces of one result (~10 MB) waited together for
 * the next GC (measured: 1000 records a piece left 10.6 MB there, 100 none).
 */
const RECORDS_PER_PIECE = 100;

/**
 * The JSON of `run --json` (DESIGN.md: `{"job", "ok", "dryRun", "examined", "actions": [...], "graphRequests",
 * "error"?, ..., "startedAt", "finishedAt"}`), one line, in pieces: the text is exactly `JSON.stringify` of the
 * result (without `errorCode`, with the times last) and a newline, but the `actions` array is written a hundred
 * records at a time. A 50,000-message backfill reports ~38,000 actions: as one string (~10 MB) plus its copy on the
 * way to stdout, it was the process's peak RSS at the end of the run (docs/BENCHMARKS.md).
 * Example: `for (const piece of runResultJson(result)) process.stdout.write(piece)`.
 */
export function* runResultJson(result: JobRunResult): Generator<string> {
  const { errorCode: _code, startedAt, finishedAt, ...rest } = result;
  const { actions } = rest;
  // The object as printed, its actions stood in for by a marker no other value can hold (a fresh UUID); `actions`
  // keeps its place among the keys (after examined), the times come last.
  const marker = randomUUID();
  const stand = `"actions":"${marker}"`;
  const outline = JSON.stringify({ ...rest, actions: marker, startedAt, finishedAt });
  const at = outline.indexOf(stand);
  yield `${outline.slice(0, at)}"actions":[`;
  for (let i = 0; i < actions.length; i += RECORDS_PER_PIECE) {
    const piece = JSON.stringify(actions.slice(i, i + RECORDS_PER_PIECE));
    yield `${i > 0 ? ',' : ''}${piece.slice(1, -1)}`;
  }
  yield `]${outline.slice(at + stand.length)}\n`;
}
