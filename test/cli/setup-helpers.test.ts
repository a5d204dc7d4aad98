import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cli } from '../helpers/cli.ts';

// Regression: `policy` refused an app-only .env that had no certificate yet ("MS_CLIENT_CERT: app-only needs a
// credential"), although it is one of the helpers a person runs to finish that setup.
test('policy prints the PowerShell from an unfinished app-only .env: no certificate, secret, canary or sign-in', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-setup-'));
  writeFileSync(path.join(dir, '.env'), 'AUTH_MODE=app-only\nMS_CLIENT_ID=11111111-2222-3333-4444-555555555555\n');
  const r = await cli(['policy', '--mailbox', 'agent@contoso.com'], {}, dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /New-ServicePrincipal|New-ApplicationAccessPolicy/);
  assert.match(r.stdout, /11111111-2222-3333-4444-555555555555/);
  assert.match(r.stdout, /agent@contoso\.com/);
});

test('policy with only --app-id and --mailbox needs no .env at all', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-setup-'));
  const r = await cli(['policy', '--app-id', '11111111-2222-3333-4444-555555555555', '--mailbox', 'agent@contoso.com'], {}, dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /agent@contoso\.com/);
});

test('cert create needs nothing, not even a valid .env', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-setup-'));
  writeFileSync(path.join(dir, '.env'), 'AUTH_MODE=app-only\nPORT=eighty\n');
  const r = await cli(['cert', 'create', '--out', 'creds', '--days', '30', '--bits', '2048'], {}, dir);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(path.join(dir, 'creds', 'cert.pem')) && existsSync(path.join(dir, 'creds', 'key.pem')));
});

test('a bad value says where it came from (.env line or environment), never "the environment or the environment"', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-setup-'));
  writeFileSync(path.join(dir, '.env'), 'PORT=eighty\n');
  const r = await cli(['status'], { MS_GRAPH_URL: 'graph.microsoft.com' }, dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /PORT: must be a port number \(got "eighty"\)\. \[set in \.env line 1\]/);
  assert.match(r.stderr, /MS_GRAPH_URL: .*\[set in the environment\]/);
  assert.doesNotMatch(r.stderr, /the environment or the environment/);
});
