import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

const ALICE = 'alice@contoso.test';

const JOBS = `jobs:
  - name: v2
    type: inbox-rules
    schedule: "*/5 * * * *"
    backfill: true
    rules:
      - name: lists
        match: { fromDomain: news.example.com, header: { name: list-id, contains: NEWS.example.com } }
        actions: [ { categorize: [List] } ]
      - name: pdfs
        match: { attachmentName: "*.PDF" }
        actions: [ { categorize: [Pdf] } ]
      - name: pngs
        match: { attachmentType: png }
        actions: [ { categorize: [Png] } ]
      - name: inline-images
        match: { attachmentType: { types: [image/*], inline: true } }
        actions: [ { categorize: [Image] } ]
      - name: known
        match: { fromContacts: true }
        actions: [ { flag: true } ]
      - name: mine
        match: { sentToMe: only, subjectContains: v2- }
        actions: [ { categorize: [Mine] } ]
      - name: copied
        match: { sentToMe: cc }
        actions: [ { categorize: [Cc] } ]
  - name: plain
    type: inbox-rules
    schedule: "*/5 * * * *"
    backfill: true
    rules:
      - name: plain
        match: { subjectContains: v2- }
        actions: [ { markRead: true } ]
`;

describe('rules v2 match keys through the sandbox: header, attachmentName, attachmentType, fromContacts, sentToMe', () => {
  let h: Harness;
  const ids: Record<string, string> = {};

  before(async () => {
    h = await startHarness({ jobsFile: JOBS });
    await signIn(h);
    h.sandbox.admin.addContact(ALICE, { displayName: 'Bob Friend', emailAddresses: ['Bob.Friend@fabrikam.test'] });
    const deliver = (key: string, input: Parameters<Harness['sandbox']['admin']['deliver']>[1]) => (ids[key] = h.sandbox.admin.deliver(ALICE, input).subject);
    deliver('list', { subject: 'v2-list', from: 'letters@news.example.com', internetMessageHeaders: [{ name: 'List-Id', value: 'Weekly <weekly.news.example.com>' }] });
    deliver('lookalike', { subject: 'v2-lookalike', from: 'letters@news.example.com' });
    deliver('pdf', { subject: 'v2-pdf', from: 'billing@shop.example.com', attachments: [{ name: 'invoice-42.pdf', contentType: 'application/pdf', content: Buffer.from('%PDF-1.4') }] });
    deliver('inline', { subject: 'v2-inline', from: 'design@shop.example.com', body: '<img src="cid:logo">', bodyContentType: 'html', attachments: [{ name: 'logo.png', contentType: 'image/png', content: Buffer.from('png'), isInline: true, contentId: 'logo' }] });
    deliver('friend', { subject: 'v2-friend', from: 'bob.friend@fabrikam.test' });
  });
  after(() => h?.close());

  test('each key matches what it should and nothing else; headers are fetched only for candidates', async () => {
    h.sandbox.admin.clearLogs();
    const result = await h.rt.runner.run('v2', {});
    assert.equal(result.ok, true, result.error);
    const categories = (subject: string) => h.sandbox.admin.messages(ALICE, 'inbox').find((m) => m.subject === subject)!.categories.sort();
    const flagged = (subject: string) => h.sandbox.admin.messages(ALICE, 'inbox').find((m) => m.subject === subject)!.flagStatus === 'flagged';
    assert.deepEqual(categories('v2-list'), ['List', 'Mine']);
    assert.deepEqual(categories('v2-lookalike'), ['Mine'], 'no List-Id header: the header key does not match');
    assert.deepEqual(categories('v2-pdf'), ['Mine', 'Pdf'], 'attachmentName globs are case-insensitive');
    assert.deepEqual(categories('v2-inline'), ['Image', 'Mine'], 'an inline image counts only where inline: true is asked');
    assert.deepEqual(categories('v2-friend'), ['Mine']);
    assert.equal(flagged('v2-friend'), true, 'the sender is a contact (address compared case-insensitively)');
    assert.equal(flagged('v2-pdf'), false);
    // Headers were asked only for the candidates of `lists` (sender in news.example.com), always inside $batch.
    const log = h.sandbox.admin.graphRequests();
    const headerGets = log.filter((r) => /internetMessageHeaders/.test(r.path));
    const candidates = h.sandbox.admin.messages(ALICE, 'inbox').filter((m) => /@(.+\.)?news\.example\.com$/i.test(m.from));
    assert.ok(candidates.length >= 2);
    assert.equal(headerGets.length, candidates.length);
    assert.ok(headerGets.every((r) => r.inBatch), 'fetched in $batch');
    const fetches = log.filter((r) => /internetMessageHeaders|\/attachments\?/.test(r.path));
    const batches = new Set(fetches.map((r) => r.inBatch!.split('#')[0]));
    assert.ok(batches.size <= Math.ceil(fetches.length / 20) + 2, `${batches.size} batches for ${fetches.length} fetches`);
    assert.ok(log.some((r) => /contactFolders\/[^/]+\/contacts\/delta/.test(r.path)), 'contacts come through contacts delta on the default folder');
  });

  test('a job whose rules use none of the new keys makes no extra request', async () => {
    h.sandbox.admin.clearLogs();
    const result = await h.rt.runner.run('plain', {});
    assert.equal(result.ok, true, result.error);
    const paths = h.sandbox.admin.graphRequests().map((r) => r.path);
    assert.ok(!paths.some((p) => /internetMessageHeaders|\/attachments|\/contacts|contactFolders/.test(p)), paths.join('\n'));
  });

  test('a contact added later is seen by the next run through contacts delta', async () => {
    h.sandbox.admin.addContact(ALICE, { displayName: 'Carol', emailAddresses: ['carol@fabrikam.test'] });
    h.sandbox.admin.deliver(ALICE, { subject: 'v2-carol', from: 'carol@fabrikam.test' });
    const result = await h.rt.runner.run('v2', {});
    assert.equal(result.ok, true, result.error);
    assert.equal(h.sandbox.admin.messages(ALICE, 'inbox').find((m) => m.subject === 'v2-carol')!.flagStatus, 'flagged');
  });
});
