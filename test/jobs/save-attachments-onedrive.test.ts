import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requiredPermissions, signInScopes } from '../../src/auth/permissions.ts';
import { parseJobsFile } from '../../src/config/jobs-file.ts';
import type { GraphClient } from '../../src/graph/client.ts';
import { encodeDrivePath } from '../../src/graph/drive.ts';
import { Mailbox, type GraphMessage } from '../../src/graph/mailbox.ts';
import { ActionCallError } from '../../src/jobs/rules/definition.ts';
import { expandDatePlaceholders, oneDriveFolder, saveAttachments } from '../../src/jobs/rules/actions/save-attachments.ts';

const file = (to: string) => `jobs:\n  - name: t\n    type: inbox-rules\n    schedule: "* * * * *"\n    rules:\n      - name: r\n        match: { isRead: false }\n        actions: [ { saveAttachments: { to: "${to}" } } ]\n`;

describe('saveAttachments to OneDrive: jobs file, permissions, app-only', () => {
  it('accepts onedrive: folders and refuses names OneDrive cannot hold, saying how to fix it', () => {
    const job = parseJobsFile(file('onedrive:/Receipts/{yyyy}/{MM}'), 'a.yaml').jobs[0]!;
    assert.ok(job.type === 'inbox-rules');
    assert.deepEqual(job.rules[0]!.actions[0], { saveAttachments: { to: 'onedrive:/Receipts/{yyyy}/{MM}' } });
    assert.deepEqual(oneDriveFolder('onedrive:Receipts//2026/'), { folder: '/Receipts/2026' });
    assert.deepEqual(oneDriveFolder('onedrive:'), { folder: '/' });
    assert.throws(() => parseJobsFile(file('onedrive:/Receipts/../x'), 'a.yaml'), /'\.\.' cannot be used in OneDrive.*Fix: e\.g\. to: "onedrive:\/Receipts/s);
    assert.throws(() => parseJobsFile(file('onedrive:/Re*ceipts'), 'a.yaml'), /'Re\*ceipts' cannot be used in OneDrive/);
  });

  it('Files.ReadWrite is asked for (delegated only) when a target is in OneDrive, and not for a local folder', () => {
    const drive = requiredPermissions(parseJobsFile(file('onedrive:/Receipts'), 'a.yaml'));
    assert.ok(drive.delegated.includes('Files.ReadWrite'));
    assert.ok(!(drive.application as string[]).includes('Files.ReadWrite'), 'never an application permission');
    assert.ok(drive.needs.some((n) => n.permission === 'Files.ReadWrite' && /OneDrive.*saveAttachments/.test(n.because.join())));
    assert.ok(signInScopes(parseJobsFile(file('onedrive:/Receipts'), 'a.yaml'), ['User.Read']).includes('Files.ReadWrite'));
    const local = parseJobsFile(file('./Receipts'), 'a.yaml');
    assert.ok(!requiredPermissions(local).delegated.includes('Files.ReadWrite'));
    assert.ok(!signInScopes(local, ['User.Read']).includes('Files.ReadWrite'));
  });

  it('is refused in app-only mode before any request, with the reason and the fix', async () => {
    let requests = 0;
    const graph = new Proxy({}, { get: () => () => { requests++; throw new Error('no request expected'); } }) as unknown as GraphClient;
    const ctx = { job: 't', mailbox: new Mailbox(graph, '/users/agent@contoso.test'), graph } as never;
    assert.ok(saveAttachments.execution.kind === 'call');
    await assert.rejects(
      saveAttachments.execution.run(ctx, { id: 'm1' } as GraphMessage, { rule: 'r', action: 'saveAttachments', value: { to: 'onedrive:/Receipts' } }),
      (e: unknown) => e instanceof ActionCallError && e.executed === false && !e.transient && /refused in app-only mode.*does not cover OneDrive.*Fix: save to a local folder/.test(e.message),
    );
    assert.equal(requests, 0);
  });

  it('date placeholders follow the zone; drive paths are encoded per segment', () => {
    assert.equal(expandDatePlaceholders('onedrive:/R/{yyyy}/{MM}/{dd}', '2026-12-31T20:00:00Z', 'Pacific/Auckland'), 'onedrive:/R/2027/01/01');
    assert.equal(expandDatePlaceholders('onedrive:/R/{yyyy}/{MM}/{dd}', '2026-12-31T20:00:00Z'), 'onedrive:/R/2026/12/31');
    assert.equal(encodeDrivePath('/Receipts/2026/a b#1.pdf'), '/Receipts/2026/a%20b%231.pdf');
  });
});
