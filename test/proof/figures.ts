/**
 * The proof suite's figures: each area writes one JSON file (what docs/RELIABILITY.md tabulates) into
 * PROOF_FIGURES_DIR (default: <tmp>/mailbox-agent-proof) and prints it, so a run's numbers can be copied as they are.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO } from '../helpers/harness.ts';
import { createRandom } from '../../src/sandbox/mailbox-generator.ts';

export interface Figures {
  area: string;
  /** Scenarios or kill points exercised. */
  cases: number;
  /** Faults injected, kills or attacks attempted. */
  injected: number;
  survived: number;
  lost: number;
  doubled: number;
  leaked: number;
  /** Anything else worth a column (seed, messages, retries seen, unsure actions reported…). */
  notes?: Record<string, unknown>;
}

export function writeFigures(figures: Figures): void {
  const dir = process.env.PROOF_FIGURES_DIR ?? path.join(tmpdir(), 'mailbox-agent-proof');
  mkdirSync(dir, { recursive: true });
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout (an unpacked tarball): the figures still stand, without a commit
  }
  const record = { ...figures, date: new Date().toISOString(), commit };
  writeFileSync(path.join(dir, `${figures.area}.json`), `${JSON.stringify(record, null, 2)}\n`);
  console.log(`PROOF FIGURES ${JSON.stringify(record)}`);
}

/** A small seeded PRNG (the sandbox's mulberry32): the same seed gives the same kill points. */
export const seededRandom = createRandom;

/** PROOF_SEED when set (a failure's replay), else a fresh one; printed either way. */
export function proofSeed(): number {
  const seed = process.env.PROOF_SEED ? Number(process.env.PROOF_SEED) : Math.floor(Math.random() * 2 ** 31);
  if (!Number.isInteger(seed)) throw new Error(`PROOF_SEED must be a whole number, not ${process.env.PROOF_SEED}`);
  console.log(`PROOF_SEED=${seed} (set it to replay this run)`);
  return seed;
}

/** Whether the long variants run (`npm run proof`) or the fast subset (`npm test`). */
export const FULL = process.env.PROOF_FULL === '1';
