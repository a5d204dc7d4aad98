import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGraphSandbox, type Json } from '../helpers/sandbox-graph.ts';

const ALICE = 'alice@contoso.test';
const user = `/v1.0/users/${ALICE}`;
const ROLES = ['Mail.ReadWrite', 'Mail.Send', 'Contacts.Read', 'Files.ReadWrite.All'];
let g: Awaited<ReturnType<typeof startGraphSandbox>>;

before(async () => {
  g = await startGraphSandbox();
  await g.newToken(ROLES);
});
after(() => g.close());

/** Follows nextLinks to the deltaLink; returns every item and the deltaLink. */
async function deltaRound(url: string, pageSize = 2) {
  const items: Json[] = [];
  let next: string | undefined = url;
  let pages = 0;
  for (;;) {
    const r = await g.call(next, { headers: { prefer: `odata.maxpagesize=${pageSize}` } });
    assert.equal(r.status, 200, r.text);
    pages++;
    items.push(...(r.json.value as Json[]));
    if (r.json['@odata.deltaLink']) return { items, deltaLink: r.json['@odata.deltaLink'] as string, pages };
    next = r.json['@odata.nextLink'] as string;
    assert.ok(next, 'a page carries a nextLink or a deltaLink');
  }
}

describe('sandbox contacts', () => {
  it('lists contacts with emailAddresses and the default folder id', async () => {
    const r = await g.call(`${user}/contacts?$select=displayName,emailAddresses,parentFolderId`);
    assert.equal(r.status, 200);
    const bob = (r.json.value as Json[]).find((c) => c.displayName === 'Bob Jones')!;
    assert.deepEqual(bob.emailAddresses, [{ name: 'Bob Jones', address: 'bob@contoso.test' }]);
    const folder = await g.call(`${user}/contactFolders/${bob.parentFolderId}`);
    assert.equal(folder.json.displayName, 'Contacts');
  });

  it('contact folder delta pages with nextLink, ends with a deltaLink, then shows added, changed and @removed contacts', async () => {
    const first = (await g.call(`${user}/contacts?$top=1`)).json.value[0] as Json;
    const start = `${user}/contactFolders/${first.parentFolderId}/contacts/delta?$select=displayName,emailAddresses`;
    const round1 = await deltaRound(start);
    assert.equal(round1.items.length, g.sb.admin.contacts(ALICE).length);
    assert.ok(round1.pages > 1);
    assert.match(round1.deltaLink, /\/contactFolders\('.+'\)\/contacts\/delta\?\$deltatoken=/);
    const added = g.sb.admin.addContact(ALICE, { displayName: 'Grace Hopper', emailAddresses: ['grace@navy.example'] });
    const gone = g.sb.admin.contacts(ALICE).find((c) => c.displayName === 'Carol Smith')!;
    g.sb.admin.removeContact(ALICE, gone.id);
    const changed = g.sb.admin.updateContact(ALICE, added.id, { emailAddresses: [{ name: 'Grace', address: 'grace@example.org' }] });
    const round2 = await deltaRound(round1.deltaLink);
    assert.deepEqual(round2.items.map((i) => i.id).sort(), [changed.id, gone.id].sort());
    assert.deepEqual(round2.items.find((i) => i.id === gone.id)!['@removed'], { reason: 'deleted' });
    assert.deepEqual(round2.items.find((i) => i.id === added.id)!.emailAddresses, [{ name: 'Grace', address: 'grace@example.org' }]);
    const round3 = await deltaRound(round2.deltaLink);
    assert.equal(round3.items.length, 0);
  });

  it('/contacts/delta works too, and expired sync state answers 410', async () => {
    const round = await deltaRound(`${user}/contacts/delta`, 50);
    assert.match(round.deltaLink, /\/contacts\/delta\?\$deltatoken=/);
    g.sb.admin.expireDeltaTokens();
    const gone = await g.call(round.deltaLink);
    assert.equal(gone.status, 410);
    assert.equal(gone.json.error.code, 'SyncStateNotFound');
  });

  it('needs Contacts.Read', async () => {
    await g.newToken(['Mail.ReadWrite']);
    try {
      const r = await g.call(`${user}/contacts`);
      assert.equal(r.status, 403);
      assert.equal(r.json.error.code, 'ErrorAccessDenied');
    } finally {
      await g.newToken(ROLES);
    }
  });
});

const put = (path: string, body: Buffer | string, query = '') => g.call(`${user}/drive/root:/${path}:/content${query}`, { method: 'PUT', body, headers: { 'content-type': 'application/pdf' } });

describe('sandbox OneDrive', () => {

  it('simple upload creates the folders of the path: 201 new, 200 replaced, 409 with fail, a new name with rename', async () => {
    const created = await put('Receipts/2026/03/invoice 1.pdf', Buffer.from('one'));
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.name, 'invoice 1.pdf');
    assert.equal(created.json.size, 3);
    assert.deepEqual(created.json.file, { mimeType: 'application/pdf' });
    assert.equal(created.json.parentReference.path, '/drive/root:/Receipts/2026/03');
    const replaced = await put('Receipts/2026/03/invoice 1.pdf', Buffer.from('two!'));
    assert.equal(replaced.status, 200);
    assert.equal(replaced.json.id, created.json.id);
    const refused = await put('Receipts/2026/03/invoice 1.pdf', 'three', '?@microsoft.graph.conflictBehavior=fail');
    assert.equal(refused.status, 409);
    assert.equal(refused.json.error.code, 'nameAlreadyExists');
    const renamed = await put('Receipts/2026/03/invoice 1.pdf', 'three', '?@microsoft.graph.conflictBehavior=rename');
    assert.equal(renamed.status, 201);
    assert.equal(renamed.json.name, 'invoice 1 1.pdf');
    assert.deepEqual(g.sb.admin.driveFiles(ALICE).map((f) => [f.path, f.size]), [
      ['/Receipts/2026/03/invoice 1 1.pdf', 5], ['/Receipts/2026/03/invoice 1.pdf', 4],
    ]);
    assert.equal(g.sb.admin.driveFileContent(ALICE, '/Receipts/2026/03/invoice 1.pdf')!.toString(), 'two!');
    const folder = await g.call(`${user}/drive/root:/Receipts/2026:/children`);
    assert.deepEqual((folder.json.value as Json[]).map((i) => [i.name, i.folder?.childCount]), [['03', 2]]);
    const raw = await g.call(`${user}/drive/items/${created.json.id}/content`);
    assert.equal(raw.text, 'two!');
  });

  it('refuses a simple upload over its limit with 413 and bad names with 400', async () => {
    g.sb.admin.setSimpleUploadMaxBytes(8);
    try {
      const r = await put('big.bin', Buffer.alloc(9));
      assert.equal(r.status, 413);
      assert.match(r.json.error.message, /createUploadSession/);
      assert.equal((await put('ok.bin', Buffer.alloc(8))).status, 201);
    } finally {
      g.sb.admin.setSimpleUploadMaxBytes(250 * 1024 * 1024);
    }
    assert.equal((await put('a:b.pdf', 'x')).status, 400);
  });

  it('upload session: uploadUrl without a bearer token, ranges in order (202 nextExpectedRanges), then 201 driveItem', async () => {
    const file = Buffer.from('0123456789abcdefghij');
    const s = await g.call(`${user}/drive/root:/Big/large.bin:/createUploadSession`, { method: 'POST', body: { item: { '@microsoft.graph.conflictBehavior': 'fail' } } });
    assert.equal(s.status, 200, s.text);
    assert.deepEqual(s.json.nextExpectedRanges, ['0-']);
    const url = s.json.uploadUrl as string;
    assert.ok(url.startsWith(g.sb.url) && !url.includes('/v1.0/'));
    assert.ok(Date.parse(s.json.expirationDateTime) > Date.now());
    const range = (from: number, to: number, auth = false) => g.call(url, {
      method: 'PUT', auth, body: file.subarray(from, to + 1), headers: { 'content-range': `bytes ${from}-${to}/${file.length}` },
    });
    assert.equal((await range(0, 7, true)).status, 401);
    const p1 = await range(0, 7);
    assert.equal(p1.status, 202);
    assert.deepEqual(p1.json.nextExpectedRanges, ['8-']);
    assert.equal((await range(0, 7)).status, 416);
    assert.equal((await range(12, 15)).status, 416);
    assert.deepEqual((await g.call(url, { auth: false })).json.nextExpectedRanges, ['8-']);
    const done = await range(8, 19);
    assert.equal(done.status, 201, done.text);
    assert.equal(done.json.name, 'large.bin');
    assert.equal(done.json.size, file.length);
    assert.deepEqual(g.sb.admin.driveFileContent(ALICE, '/Big/large.bin'), file);
    assert.equal((await g.call(url, { auth: false })).status, 404);
  });

  it('upload session with fail on an existing name answers 409 nameAlreadyExists at the last range', async () => {
    await put('Dup/x.pdf', 'old');
    const s = await g.call(`${user}/drive/root:/Dup/x.pdf:/createUploadSession`, { method: 'POST', body: {} });
    const r = await g.call(s.json.uploadUrl, { method: 'PUT', auth: false, body: 'new', headers: { 'content-range': 'bytes 0-2/3' } });
    assert.equal(r.status, 409);
    assert.equal(r.json.error.code, 'nameAlreadyExists');
    assert.equal(g.sb.admin.driveFileContent(ALICE, '/Dup/x.pdf')!.toString(), 'old');
  });

  it('needs Files.ReadWrite(.All) to write', async () => {
    await g.newToken(['Mail.ReadWrite']);
    try {
      const r = await put('nope.pdf', 'x');
      assert.equal(r.status, 403);
      assert.equal(r.json.error.code, 'ErrorAccessDenied');
    } finally {
      await g.newToken(ROLES);
    }
  });
});

describe('sandbox admin over HTTP (other processes)', () => {
  it('delivers a message with headers and base64 attachments, shows it, adds and removes contacts, lists drive files', async () => {
    const admin = (path: string, init: { method?: string; body?: unknown } = {}) => g.call(`/_sandbox${path}`, { ...init, auth: false });
    const delivered = await admin(`/mailbox/${ALICE}/messages`, {
      method: 'POST',
      body: {
        subject: 'List mail', from: 'news@list.example', internetMessageHeaders: [{ name: 'List-Id', value: '<list.example>' }],
        attachments: [{ name: 'a.txt', contentType: 'text/plain', content: Buffer.from('hello').toString('base64') }],
      },
    });
    assert.equal(delivered.status, 201, delivered.text);
    assert.equal(delivered.json.hasAttachments, true);
    const detail = await admin(`/mailbox/${ALICE}/messages/${delivered.json.id}`);
    assert.equal(detail.json.internetMessageHeaders.find((h: Json) => h.name === 'List-Id').value, '<list.example>');
    const att = detail.json.attachments[0] as Json;
    assert.equal((await admin(`/mailbox/${ALICE}/messages/${delivered.json.id}/attachments/${att.id}/content`)).text, 'hello');
    const bad = await admin(`/mailbox/${ALICE}/messages`, { method: 'POST', body: { subject: 'x', attachments: [{ name: 'a' }] } });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /content/);

    const added = await admin(`/mailbox/${ALICE}/contacts`, { method: 'POST', body: { displayName: 'Ada Lovelace', emailAddresses: ['ada@example.org'] } });
    assert.equal(added.status, 201);
    assert.ok((await admin(`/mailbox/${ALICE}/contacts`)).json.some((c: Json) => c.id === added.json.id));
    assert.equal((await admin(`/mailbox/${ALICE}/contacts/${added.json.id}`, { method: 'DELETE' })).status, 200);
    assert.equal((await admin(`/mailbox/${ALICE}/contacts/${added.json.id}`, { method: 'DELETE' })).status, 404);

    await put('Http/file.txt', 'bytes');
    assert.ok((await admin(`/mailbox/${ALICE}/drive`)).json.some((f: Json) => f.path === '/Http/file.txt' && f.size === 5));
    assert.equal((await admin(`/mailbox/${ALICE}/drive/content?path=/Http/file.txt`)).text, 'bytes');
    assert.equal((await admin(`/mailbox/${ALICE}/drive/content?path=/Http/none.txt`)).status, 404);
  });
});
