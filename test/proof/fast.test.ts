import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crashProof } from './crash-scenario.ts';
import { proofSeed } from './figures.ts';

/**
 * The proof suite's fast subset, for `npm test`: the crash proof on 60 messages (and the few delivered beside them)
 * with 2 kill points (the same checks as test/proof/crash.proof.ts, which `npm run proof` runs on 1,000 messages and
 * 50 kill points, with the other areas): attachments saved once each, replies once per sender included.
 */
test('crash safety, small: kill -9 of `mailbox-agent run --json` twice mid-backfill, then finish: every message as the rules say, nothing twice', { timeout: 10 * 60_000 }, async () => {
  const f = await crashProof({ messages: 60, kills: 2, seed: proofSeed() });
  assert.equal(f.lost + f.doubled, 0);
  assert.equal(f.survived, f.messages, 'every message, the delivered ones beside the 60 generated too');
  assert.ok(f.saves.wanted > 0 && f.replies.senders > 0, 'the mailbox has attachments to save and senders to answer');
});
