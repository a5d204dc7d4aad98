import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cli } from '../helpers/cli.ts';

const APP_ONLY = {
  AUTH_MODE: 'app-only', MS_CLIENT_ID: '11111111-2222-3333-4444-555555555555', MS_CLIENT_SECRET: 'not-a-real-secret',
  MAILBOX: 'me@outlook.com', CANARY_MAILBOX: 'other@outlook.com',
};

for (const tenant of ['consumers', '9188040d-6c67-4c5b-b112-36a304b66dad']) {
  test(`app-only with MS_TENANT=${tenant} is refused at once: personal accounts have no app-only access`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ma-msa-'));
    writeFileSync(path.join(dir, 'agent.config.yaml'), 'jobs: []\n');
    const r = await cli(['status'], { ...APP_ONLY, MS_TENANT: tenant }, dir);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /personal Microsoft accounts \(Outlook\.com, Hotmail\) have no app-only access/);
    assert.match(r.stderr, /use AUTH_MODE=delegated/);
  });
}
