import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FULL, proofSeed, writeFigures } from './figures.ts';
import { stormProof } from './storm-scenario.ts';

test('fault storms: 429s (seconds, fractional, HTTP date, inside $batch), 5xx, resets, malformed and truncated JSON, slow answers, token endpoint down: final mailbox exact, Retry-After kept, at most 4 in flight', { timeout: 30 * 60_000 }, async () => {
  const seed = proofSeed();
  const messages = Number(process.env.PROOF_MESSAGES ?? (FULL ? 1000 : 200));
  const f = await stormProof({ messages, seed });
  writeFigures({
    area: 'storm', cases: f.messages, injected: Object.values(f.faultsFired).reduce((a, b) => a + b, 0) + f.tokenErrorsFired, survived: f.survived, lost: f.lost, doubled: f.doubled, leaked: 0,
    notes: { seed, faultsFired: f.faultsFired, tokenErrorsFired: f.tokenErrorsFired, runs: f.runs, reportedUnsure: f.reportedUnsure, refusalsAnswered: f.retriesSeen, earlyRepeats: f.earlyRepeats, concurrencyRefusals: f.concurrencyRefusals },
  });
  assert.equal(f.lost + f.doubled, 0);
});
