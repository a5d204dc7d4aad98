import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crashProof } from './crash-scenario.ts';
import { FULL, proofSeed, writeFigures } from './figures.ts';

/**
 * `npm run proof`: 1,000 messages (and the few of `proofExtras`) and 50 kill points (PROOF_MESSAGES / PROOF_KILLS
 * change them; PROOF_SEED replays). Saved attachments and replies are checked too (figures `saves`, `replies`).
 * Without PROOF_FULL=1 it runs a small version (200 messages, 5 kills) for development.
 */
test('crash safety: kill -9 at seeded random points of `mailbox-agent run --json`, then finish: every message as the rules say, nothing twice', { timeout: 60 * 60_000 }, async () => {
  const seed = proofSeed();
  const messages = Number(process.env.PROOF_MESSAGES ?? (FULL ? 1000 : 200));
  const kills = Number(process.env.PROOF_KILLS ?? (FULL ? 50 : 5));
  const f = await crashProof({ messages, kills, seed });
  writeFigures({
    area: 'crash', cases: f.messages, injected: f.killsLanded, survived: f.survived, lost: f.lost, doubled: f.doubled, leaked: 0,
    notes: { seed, killPoints: f.kills, killsLanded: f.killsLanded, runs: f.runs, reportedUnsure: f.reportedUnsure, saves: f.saves, replies: f.replies, grantLostInUnclosableWindow: f.grantLostInUnclosableWindow, points: f.killPoints },
  });
  assert.equal(f.lost + f.doubled, 0);
});

test('crash safety, the server: `mailbox-agent start` killed with -9 while a "Run now" is in flight, restarted each time, then let finish', { timeout: 60 * 60_000 }, async () => {
  const seed = proofSeed();
  const messages = Number(process.env.PROOF_MESSAGES ?? (FULL ? 1000 : 200));
  const kills = Number(process.env.PROOF_START_KILLS ?? (FULL ? 10 : 3));
  const f = await crashProof({ messages, kills, seed, via: 'start' });
  writeFigures({
    area: 'crash-start', cases: f.messages, injected: f.killsLanded, survived: f.survived, lost: f.lost, doubled: f.doubled, leaked: 0,
    notes: { seed, killPoints: f.kills, killsLanded: f.killsLanded, runs: f.runs, reportedUnsure: f.reportedUnsure, saves: f.saves, replies: f.replies, grantLostInUnclosableWindow: f.grantLostInUnclosableWindow, points: f.killPoints },
  });
  assert.equal(f.lost + f.doubled, 0);
});
