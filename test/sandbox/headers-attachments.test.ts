import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateMailbox } from '../../src/sandbox/index.ts';
import { Mailbox } from '../../src/sandbox/mailbox-store.ts';
import { startGraphSandbox, type Json } from '../helpers/sandbox-graph.ts';

const ALICE = 'alice@contoso.test';
const user = `/v1.0/users/${ALICE}`;
let g: Awaited<ReturnType<typeof startGraphSandbox>>;

before(async () => {
  g = await startGraphSandbox();
  await g.newToken();
});
after(() => g.close());

const headerOf = (list: Json[], name: string) => list.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value as string | undefined;

describe('sandbox internetMessageHeaders', () => {
  it('are returned only when $select names them, as an array of {name, value}', async () => {
    const m = g.sb.admin.deliver(ALICE, {
      subject: 'Weekly news', from: { name: 'News', address: 'weekly@news.example.com' },
      internetMessageHeaders: [{ name: 'List-Id', value: 'Weekly <weekly.news.example.com>' }, { name: 'List-Unsubscribe', value: '<https://news.example.com/u>' }],
    });
    const plain = await g.call(`${user}/messages/${m.id}`);
    assert.equal(plain.status, 200);
    assert.equal('internetMessageHeaders' in plain.json, false);
    const selected = await g.call(`${user}/messages/${m.id}?$select=subject,internetMessageHeaders`);
    assert.equal(selected.status, 200);
    const headers = selected.json.internetMessageHeaders as Json[];
    assert.ok(headers.every((h) => Object.keys(h).sort().join() === 'name,value'));
    assert.equal(headerOf(headers, 'List-Id'), 'Weekly <weekly.news.example.com>');
    assert.equal(headerOf(headers, 'List-Unsubscribe'), '<https://news.example.com/u>');
    assert.ok(headers.filter((h) => h.name === 'Received').length >= 1);
    assert.match(headerOf(headers, 'Message-ID')!, /^<.+@news\.example\.com>$/);
    assert.equal(headerOf(headers, 'Subject'), 'Weekly news');
  });

  it('are valid in $select inside $batch and of message delta', async () => {
    const [m] = g.sb.admin.messages(ALICE, 'inbox');
    const b = await g.call('/v1.0/$batch', { method: 'POST', body: { requests: [{ id: '1', method: 'GET', url: `/users/${ALICE}/messages/${m!.id}?$select=internetMessageHeaders` }] } });
    assert.equal(b.status, 200);
    assert.equal(b.json.responses[0].status, 200);
    assert.ok(Array.isArray(b.json.responses[0].body.internetMessageHeaders));
    const d = await g.call(`${user}/mailFolders/inbox/messages/delta?$select=subject,internetMessageHeaders`, { headers: { prefer: 'odata.maxpagesize=5' } });
    assert.equal(d.status, 200);
    assert.ok((d.json.value as Json[]).every((v) => Array.isArray(v.internetMessageHeaders)));
  });

  it('of generated mail carry List-Id on newsletters and Auto-Submitted on notifications', async () => {
    const list = generateMailbox(200, 7, Date.parse('2026-06-01T00:00:00Z'));
    const newsletters = list.filter((x) => x.kind === 'newsletter');
    const notifications = list.filter((x) => x.kind === 'notification');
    assert.ok(newsletters.length > 0 && notifications.length > 0);
    for (const n of newsletters) {
      assert.match(headerOf(n.internetMessageHeaders!, 'List-Id')!, /<[a-z]+\.[a-z.]+>$/);
      assert.match(headerOf(n.internetMessageHeaders!, 'List-Unsubscribe')!, /^<https:\/\//);
    }
    for (const n of notifications) assert.equal(headerOf(n.internetMessageHeaders!, 'Auto-Submitted'), 'auto-generated');
    const colleague = list.find((x) => x.kind === 'colleague')!;
    assert.equal(headerOf(colleague.internetMessageHeaders ?? [], 'List-Id'), undefined);
    // Same seed, same mail: subjects and attachments alike.
    assert.deepEqual(generateMailbox(200, 7, Date.parse('2026-06-01T00:00:00Z')), list);
  });
});

describe('sandbox attachments', () => {
  const pdf = Buffer.from('%PDF-1.4\n% a receipt\n%%EOF\n');
  const logo = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

  it('lists fileAttachments with $select and no contentBytes, gives one with contentBytes and its raw $value', async () => {
    const m = g.sb.admin.deliver(ALICE, {
      subject: 'Receipt', attachments: [{ name: 'receipt.pdf', contentType: 'application/pdf', content: pdf }, { name: 'logo.png', contentType: 'image/png', content: logo.toString('base64'), isInline: true, contentId: 'logo@x' }],
    });
    assert.equal(m.hasAttachments, true);
    const list = await g.call(`${user}/messages/${m.id}/attachments?$select=name,contentType,size,isInline`);
    assert.equal(list.status, 200);
    assert.deepEqual((list.json.value as Json[]).map((a) => [a['@odata.type'], a.name, a.contentType, a.size, a.isInline, 'contentBytes' in a]), [
      ['#microsoft.graph.fileAttachment', 'receipt.pdf', 'application/pdf', pdf.length, false, false],
      ['#microsoft.graph.fileAttachment', 'logo.png', 'image/png', logo.length, true, false],
    ]);
    const id = list.json.value[0].id as string;
    const one = await g.call(`${user}/messages/${m.id}/attachments/${id}`);
    assert.equal(one.status, 200);
    assert.equal(Buffer.from(one.json.contentBytes, 'base64').toString(), pdf.toString());
    const raw = await g.call(`${user}/messages/${m.id}/attachments/${id}/$value`);
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get('content-type'), 'application/pdf');
    assert.deepEqual(raw.bytes, pdf);
    const batched = await g.call('/v1.0/$batch', { method: 'POST', body: { requests: [{ id: 'v', method: 'GET', url: `/users/${ALICE}/messages/${m.id}/attachments/${id}/$value` }] } });
    assert.equal(Buffer.from(batched.json.responses[0].body, 'base64').toString(), pdf.toString());
    assert.deepEqual(g.sb.admin.attachmentContent(ALICE, m.id, id), pdf);
  });

  it('inline images alone leave hasAttachments false, as in Graph', async () => {
    const m = g.sb.admin.deliver(ALICE, { subject: 'Signature only', bodyContentType: 'html', body: '<img src="cid:logo@x">', attachments: [{ name: 'logo.png', contentType: 'image/png', content: logo, isInline: true }] });
    const got = await g.call(`${user}/messages/${m.id}?$select=hasAttachments`);
    assert.equal(got.json.hasAttachments, false);
    const list = await g.call(`${user}/messages/${m.id}/attachments`);
    assert.equal(list.json.value.length, 1);
    assert.equal(list.json.value[0].isInline, true);
  });

  it('hasAttachments and the attachments agree on every generated message', async () => {
    const detail = g.sb.admin.messages(ALICE).map((m) => g.sb.admin.messageDetail(ALICE, m.id));
    assert.ok(detail.some((d) => d.attachments.some((a) => a.isInline) && !d.hasAttachments), 'some message has only an inline image');
    assert.ok(detail.some((d) => d.attachments.some((a) => a.name.endsWith('.pdf'))));
    for (const d of detail) assert.equal(d.hasAttachments, d.attachments.some((a) => !a.isInline), d.subject);
    const withFile = detail.find((d) => d.hasAttachments)!;
    const list = await g.call(`${user}/messages/${withFile.id}/attachments?$select=name,size`);
    assert.deepEqual((list.json.value as Json[]).map((a) => [a.name, a.size]), withFile.attachments.map((a) => [a.name, a.size]));
    const raw = await g.call(`${user}/messages/${withFile.id}/attachments/${withFile.attachments[0]!.id}/$value`);
    assert.equal(raw.bytes.length, withFile.attachments[0]!.size);
  });

  it('answers 404 for an unknown attachment, 400 for an unknown property and 403 without Mail.Read', async () => {
    const m = g.sb.admin.deliver(ALICE, { subject: 'x', attachments: [{ name: 'a.txt', contentType: 'text/plain', content: Buffer.from('a') }] });
    assert.equal((await g.call(`${user}/messages/${m.id}/attachments/nope`)).json.error.code, 'ErrorItemNotFound');
    const bad = await g.call(`${user}/messages/${m.id}/attachments?$select=fileName`);
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /fileName/);
    await g.newToken(['Mail.Send']);
    try {
      const denied = await g.call(`${user}/messages/${m.id}/attachments`);
      assert.equal(denied.status, 403);
      assert.equal(denied.json.error.code, 'ErrorAccessDenied');
    } finally {
      await g.newToken(null);
    }
  });

  it('admin.deliver names the fix for a bad attachment or header', () => {
    assert.throws(() => g.sb.admin.deliver(ALICE, { subject: 'x', attachments: [{ name: 'a' } as never] }), /attachments\[0\] needs name \(string\) and content/);
    assert.throws(() => g.sb.admin.deliver(ALICE, { subject: 'x', internetMessageHeaders: [{ name: 'List-Id' } as never] }), /array of \{name, value\}/);
  });

  it('a state file saved before attachments were stored still agrees with hasAttachments', () => {
    const box = Mailbox.create('old@contoso.test', 'salt');
    const m = box.addMessage({
      subject: 'old', bodyContentType: 'text', body: '', from: { name: 'a', address: 'a@b.c' }, to: [], cc: [], receivedDateTime: '2026-01-01T00:00:00Z',
      importance: 'normal', isRead: false, hasAttachments: true, categories: [], flagStatus: 'notFlagged',
    }, box.folder('inbox')!.id, '2026-01-01T00:00:00Z');
    const data = JSON.parse(JSON.stringify(box.toJSON()));
    delete data.messages[0].attachments;
    const reloaded = new Mailbox(data);
    assert.equal(reloaded.message(m.id)!.attachments!.length, 1);
    assert.equal(reloaded.message(m.id)!.attachments![0]!.isInline, false);
  });

  it('forward carries the original\'s files and sendMail the fileAttachments it is given', async () => {
    const pdfBytes = Buffer.from('%PDF-1.4 forwarded');
    const m = g.sb.admin.deliver(ALICE, { subject: 'To forward', attachments: [{ name: 'f.pdf', contentType: 'application/pdf', content: pdfBytes }] });
    const fw = await g.call(`${user}/messages/${m.id}/forward`, { method: 'POST', body: { comment: 'fyi', toRecipients: [{ emailAddress: { address: 'bob@contoso.test' } }] } });
    assert.equal(fw.status, 202);
    const got = g.sb.admin.messages('bob@contoso.test', 'inbox').find((x) => x.subject === 'FW: To forward')!;
    const att = g.sb.admin.messageDetail('bob@contoso.test', got.id).attachments;
    assert.deepEqual(att.map((a) => [a.name, a.size]), [['f.pdf', pdfBytes.length]]);
    assert.deepEqual(g.sb.admin.attachmentContent('bob@contoso.test', got.id, att[0]!.id), pdfBytes);
    const sent = await g.call(`${user}/sendMail`, {
      method: 'POST',
      body: { message: { subject: 'With file', toRecipients: [{ emailAddress: { address: 'bob@contoso.test' } }], attachments: [{ '@odata.type': '#microsoft.graph.fileAttachment', name: 'n.txt', contentType: 'text/plain', contentBytes: Buffer.from('note').toString('base64') }] } },
    });
    assert.equal(sent.status, 202);
    const arrived = g.sb.admin.messages('bob@contoso.test', 'inbox').find((x) => x.subject === 'With file')!;
    const files = g.sb.admin.messageDetail('bob@contoso.test', arrived.id).attachments;
    assert.equal(g.sb.admin.attachmentContent('bob@contoso.test', arrived.id, files[0]!.id).toString(), 'note');
  });
});
