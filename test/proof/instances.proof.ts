import assert from 'node:assert/strict';
import { test } from 'node:test';
import { writeFigures } from './figures.ts';
import { instancesProof, type InstancesFigures } from './instances-scenario.ts';

const all: InstancesFigures[] = [];

for (const backend of ['redis', 'postgres'] as const) {
  test(`two instances on one ${backend} store, one killed with -9 mid-run, and a shell's run: no overlap, no fire twice, nothing doubled, the survivor carries on`, { timeout: 10 * 60_000 }, async () => {
    const f = await instancesProof(backend, { firesBeforeKill: Number(process.env.PROOF_FIRES ?? 4) });
    all.push(f);
    console.log(`PROOF instances ${JSON.stringify(f)}`);
    assert.equal(f.overlaps, 0, 'no two runs of the job overlapped');
    assert.equal(f.firesRunTwice, 0, 'no scheduled fire ran on both instances');
    assert.equal(f.doubled, 0);
    assert.equal(f.lost, 0);
  });
}

test('two instances: figures', () => {
  if (all.length === 0) return;
  writeFigures({
    area: 'instances', cases: all.reduce((n, f) => n + f.fires, 0), injected: all.reduce((n, f) => n + f.kills, 0), survived: all.reduce((n, f) => n + f.messages - f.lost, 0),
    lost: all.reduce((n, f) => n + f.lost, 0), doubled: all.reduce((n, f) => n + f.doubled + f.firesRunTwice + f.overlaps, 0), leaked: 0, notes: { backends: all },
  });
});
