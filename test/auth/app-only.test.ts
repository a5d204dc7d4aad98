import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { createCertificate, expiryWarning, loadCertificate, type CreatedCertificate } from '../../src/auth/certificates.ts';
import { confinementScript } from '../../src/auth/confinement.ts';
import { requiredPermissions } from '../../src/auth/permissions.ts';
import { parseJobsFile } from '../../src/config/jobs-file.ts';
import { createLogger } from '../../src/config/logger.ts';
import { GraphClient } from '../../src/graph/client.ts';

const log = createLogger({ level: 'silent' });

describe('the Graph client mailbox guard (allowedMailbox)', () => {
  const sent: string[] = [];
  const graph = new GraphClient({
    graphUrl: new URL('https://graph.example.test'),
    tokens: { mode: 'app-only', getAccessToken: async () => 'token', status: async () => ({ mode: 'app-only', state: 'ready', account: null }) },
    fetch: async (url) => {
      sent.push(String(url));
      return new Response('{"value":[]}', { status: 200, headers: { 'content-type': 'application/json' } });
    },
    log,
    allowedMailbox: 'Alice@Contoso.test',
  });

  test('refuses other mailboxes, /me and anything outside /users/{MAILBOX} before any request', async () => {
    for (const p of [
      '/users/bob@contoso.test/messages',
      "/users('bob@contoso.test')/messages",
      '/users/bob%40contoso.test/mailFolders/inbox',
      '/me/messages',
      '/me',
      '/users',
      '/users?$filter=startswith(mail,%27a%27)',
      'https://graph.example.test/v1.0/users/bob@contoso.test/messages?$skip=10',
      '/groups/1/members',
      '/users/alice@contoso.test.evil/messages',
    ]) {
      await assert.rejects(graph.get(p), { code: 'MAILBOX_REFUSED' }, p);
    }
    await assert.rejects(graph.post('/$batch', { requests: [{ id: '1', method: 'GET', url: '/users/alice@contoso.test/messages' }, { id: '2', method: 'GET', url: 'users/bob@contoso.test/messages' }] }), { code: 'MAILBOX_REFUSED' });
    assert.deepEqual(sent, []);
  });

  test('lets MAILBOX through, in any case or encoding', async () => {
    await graph.get('/users/alice@contoso.test/messages');
    await graph.get('/users/ALICE%40CONTOSO.TEST/mailFolders/inbox/messages/delta');
    await graph.get("/users('alice@contoso.test')");
    await graph.post('/$batch', { requests: [{ id: '1', method: 'GET', url: '/users/alice@contoso.test/messages' }] });
    assert.equal(sent.length, 4);
  });
});

describe('least privilege', () => {
  const jobs = (yaml: string) => parseJobsFile(yaml, '/tmp/agent.config.yaml');

  test('read-only rules need Mail.Read only; writes need Mail.ReadWrite; forwarding Mail.Send', () => {
    const readOnly = requiredPermissions(jobs('timezone: UTC\njobs:\n  - name: watch\n    type: inbox-rules\n    schedule: "* * * * *"\n    rules:\n      - name: hook\n        match: { isRead: false }\n        actions: [ { webhook: "https://hooks.example.com/x" } ]\n'));
    assert.deepEqual(readOnly.application, ['Mail.Read']);
    assert.deepEqual(readOnly.delegated, ['openid', 'profile', 'offline_access', 'User.Read', 'Mail.Read']);
    const writes = requiredPermissions(jobs('jobs:\n  - name: tidy\n    type: inbox-rules\n    schedule: "* * * * *"\n    rules:\n      - name: r\n        match: { isRead: true }\n        actions: [ { moveTo: Archive }, { forwardTo: a@b.example } ]\n'));
    assert.deepEqual(writes.application, ['Mail.ReadWrite', 'Mail.Send', 'MailboxSettings.Read']);
    assert.match(writes.needs.find((n) => n.permission === 'Mail.Send')!.because[0]!, /tidy forwards mail/);
  });

  test('agenda-digest needs Calendars.Read and MailboxSettings.Read, Mail.Send only when it mails', () => {
    const toFile = requiredPermissions(jobs('timezone: UTC\njobs:\n  - name: agenda\n    type: agenda-digest\n    schedule: "0 7 * * *"\n    sendTo: ./agenda.txt\n'));
    assert.deepEqual(toFile.application, ['Calendars.Read', 'MailboxSettings.Read']);
    const toMe = requiredPermissions(jobs('timezone: UTC\njobs:\n  - name: agenda\n    type: agenda-digest\n    schedule: "0 7 * * *"\n    sendTo: me\n'));
    assert.deepEqual(toMe.application, ['Mail.Send', 'Calendars.Read', 'MailboxSettings.Read']);
  });

  test('the policy script assigns one RBAC role per needed permission and reminds to remove the Entra grant', () => {
    const script = confinementScript({ appId: 'app-1', mailbox: 'agent@contoso.com', permissions: ['Mail.Read', 'Calendars.Read'] });
    assert.equal(script.match(/New-ManagementRoleAssignment/g)?.length, 2);
    assert.match(script, /-Role "Application Calendars\.Read"/);
    assert.match(script, /RecipientRestrictionFilter "PrimarySmtpAddress -eq 'agent@contoso\.com'"/);
    assert.match(script, /Remove the unscoped/);
  });
});

describe('certificate credentials', () => {
  let dir: string;
  let a: CreatedCertificate;
  let b: CreatedCertificate;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ma-certs-'));
    a = createCertificate({ dir: path.join(dir, 'a'), bits: 2048, days: 20 });
    b = createCertificate({ dir: path.join(dir, 'b'), bits: 2048 });
  });

  test('loads a matching pair with both thumbprints for msal-node', () => {
    const loaded = loadCertificate(a.certPath, a.keyPath);
    assert.equal(loaded.thumbprintSha256, a.facts.thumbprintSha256);
    assert.match(loaded.privateKeyPem, /BEGIN PRIVATE KEY/);
    assert.equal(loaded.keyBits, 2048);
  });

  test('refuses a key that is not the certificate\'s, and a file that is no certificate, naming the variable', () => {
    assert.throws(() => loadCertificate(a.certPath, b.keyPath), { code: 'AUTH_CONFIG', message: /\(MS_CLIENT_KEY\) is not the private key of .*\(MS_CLIENT_CERT\)/ });
    const junk = path.join(dir, 'junk.pem');
    writeFileSync(junk, 'hello');
    assert.throws(() => loadCertificate(junk, a.keyPath), { code: 'AUTH_CONFIG', message: /\(MS_CLIENT_CERT\) holds no PEM certificate/ });
  });

  test('refuses an expired certificate and warns within 30 days of expiry', () => {
    const later = Date.now() + 40 * 86_400_000;
    assert.throws(() => loadCertificate(a.certPath, a.keyPath, later), { code: 'AUTH_CONFIG', message: /expired on/ });
    assert.match(String(expiryWarning('The certificate', a.facts.notAfter)), /expires on .* \(in 2\d day\(s\)\)/);
    assert.equal(expiryWarning('The certificate', b.facts.notAfter), undefined);
  });
});
