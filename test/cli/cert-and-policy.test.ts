import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { cli } from '../helpers/cli.ts';

describe('mailbox-agent cert create', () => {
  let dir: string;
  let out: { code: number; stdout: string; stderr: string };
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ma-certcli-'));
    out = await cli(['cert', 'create', '--out', 'creds', '--days', '90'], {}, dir);
  });

  test('writes an RSA 3072 self-signed certificate, a 0600 key and keyCredentials, and prints both thumbprints', () => {
    assert.equal(out.code, 0, out.stderr);
    const certPem = readFileSync(path.join(dir, 'creds/cert.pem'), 'utf8');
    const x509 = new X509Certificate(certPem);
    assert.equal(x509.publicKey.asymmetricKeyDetails?.modulusLength, 3072);
    assert.equal(x509.issuer, x509.subject);
    const days = (Date.parse(x509.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 89 && days <= 90.01, `valid for ${days} days`);
    assert.equal(statSync(path.join(dir, 'creds/key.pem')).mode & 0o777, 0o600);
    const sha1 = createHash('sha1').update(x509.raw).digest('hex').toUpperCase();
    const sha256 = createHash('sha256').update(x509.raw).digest('hex').toUpperCase();
    assert.match(out.stdout, new RegExp(`SHA-1 thumbprint: +${sha1}`));
    assert.match(out.stdout, new RegExp(`SHA-256 thumbprint: +${sha256}`));
    assert.match(out.stdout, /MS_CLIENT_CERT=.*creds\/cert\.pem/);
    const manifest = JSON.parse(readFileSync(path.join(dir, 'creds/keyCredentials.json'), 'utf8')) as { keyCredentials: Record<string, string>[] };
    const entry = manifest.keyCredentials[0]!;
    assert.equal(entry.type, 'AsymmetricX509Cert');
    assert.equal(entry.usage, 'Verify');
    assert.equal(entry.key, x509.raw.toString('base64'));
    assert.equal(entry.customKeyIdentifier, Buffer.from(sha1, 'hex').toString('base64'));
    assert.match(entry.keyId!, /^[0-9a-f-]{36}$/);
  });

  test('never overwrites a credential, and refuses keys under 2048 bits', async () => {
    const before = readFileSync(path.join(dir, 'creds/key.pem'), 'utf8');
    const again = await cli(['cert', 'create', '--out', 'creds'], {}, dir);
    assert.equal(again.code, 64);
    assert.match(again.stderr, /already exist\(s\); cert create never overwrites a credential\. Choose another --out DIR/);
    assert.equal(readFileSync(path.join(dir, 'creds/key.pem'), 'utf8'), before);
    const small = await cli(['cert', 'create', '--out', 'small', '--bits', '1024'], {}, dir);
    assert.equal(small.code, 64);
    assert.match(small.stderr, /1024 bits is too small: Entra requires at least 2048/);
    const usage = await cli(['cert', 'make'], {}, dir);
    assert.equal(usage.code, 64);
  });
});

describe('mailbox-agent policy', () => {
  test('prints RBAC for Applications and ApplicationAccessPolicy commands for the permissions the jobs need', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ma-policy-'));
    writeFileSync(path.join(dir, 'agent.config.yaml'), [
      'timezone: Europe/Berlin',
      'jobs:',
      '  - name: tidy',
      '    type: inbox-rules',
      '    schedule: "*/5 * * * *"',
      '    rules:',
      '      - name: fwd',
      '        match: { subjectContains: invoice }',
      '        actions: [ { forwardTo: books@contoso.com } ]',
      '',
    ].join('\n'));
    const r = await cli(['policy', '--group', 'agent-scope@contoso.com'], { MS_CLIENT_ID: '11111111-2222-3333-4444-555555555555', MAILBOX: 'agent@contoso.com' }, dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Graph application permissions the configured jobs need: Mail\.Read, Mail\.Send/);
    assert.match(r.stdout, /New-ServicePrincipal -AppId 11111111-2222-3333-4444-555555555555 -ObjectId </);
    assert.match(r.stdout, /New-ManagementScope -Name "mailbox-agent agent@contoso\.com" -RecipientRestrictionFilter "MemberOfGroup/);
    assert.match(r.stdout, /New-ManagementRoleAssignment -App 11111111-2222-3333-4444-555555555555 -Role "Application Mail\.Read" -CustomResourceScope/);
    assert.match(r.stdout, /-Role "Application Mail\.Send"/);
    assert.doesNotMatch(r.stdout, /Application Mail\.ReadWrite|Calendars/);
    assert.match(r.stdout, /Test-ServicePrincipalAuthorization -Identity 11111111-2222-3333-4444-555555555555 -Resource agent@contoso\.com/);
    assert.match(r.stdout, /Remove the unscoped/);
    assert.match(r.stdout, /New-ApplicationAccessPolicy -AppId 11111111-2222-3333-4444-555555555555 -PolicyScopeGroupId agent-scope@contoso\.com -AccessRight RestrictAccess/);
    assert.match(r.stdout, /Test-ApplicationAccessPolicy -Identity agent@contoso\.com -AppId 11111111-2222-3333-4444-555555555555/);
  });

  test('without an app id or a mailbox it says which is missing', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ma-policy-'));
    const r = await cli(['policy'], {}, dir);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /Which app\? MS_CLIENT_ID is not set\. Set MS_CLIENT_ID in \.env, or pass --app-id/);
  });
});
