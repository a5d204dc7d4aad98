import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startGraphSandbox, type Json } from '../helpers/sandbox-graph.ts';

const ALICE = 'alice@contoso.test';
const BOB = 'bob@contoso.test';
const user = `/v1.0/users/${ALICE}`;
let g: Awaited<ReturnType<typeof startGraphSandbox>>;
/** The sandbox's clock: the budget window moves only when a test moves it. */
let now = Date.parse('2026-12-01T10:00:00Z');

before(async () => {
  g = await startGraphSandbox({ now: () => now });
  await g.newToken();
});
after(() => g.close());

describe('sandbox reply', () => {
  it('POST …/reply {comment} answers 202, saves "RE: …" in Sent Items and delivers it threaded', async () => {
    const original = g.sb.admin.deliver(ALICE, { subject: 'Lunch?', from: { name: 'Bob Jones', address: BOB }, body: 'Thursday?' });
    const r = await g.call(`${user}/messages/${original.id}/reply`, { method: 'POST', body: { comment: 'Yes, 12:30.' } });
    assert.equal(r.status, 202);
    assert.equal(r.text, '');
    const sent = g.sb.admin.messages(ALICE, 'sentitems').find((m) => m.subject === 'RE: Lunch?')!;
    assert.ok(sent);
    const detail = g.sb.admin.messageDetail(ALICE, sent.id);
    assert.deepEqual(detail.to.map((a) => a.address), [BOB]);
    assert.match(detail.body, /^Yes, 12:30\./);
    const inbox = g.sb.admin.messages(BOB, 'inbox').find((m) => m.subject === 'RE: Lunch?')!;
    const headers = g.sb.admin.messageDetail(BOB, inbox.id).internetMessageHeaders;
    const origId = g.sb.admin.messageDetail(ALICE, original.id).internetMessageHeaders.find((h) => h.name === 'Message-ID')!.value;
    assert.equal(headers.find((h) => h.name === 'In-Reply-To')?.value, origId);
  });

  it('goes to replyTo when the original has one, and refuses comment with message.body (400)', async () => {
    const original = g.sb.admin.deliver(ALICE, { subject: 'Form', from: 'noreply@forms.example', replyTo: [BOB] });
    assert.equal((await g.call(`${user}/messages/${original.id}/reply`, { method: 'POST', body: { message: { toRecipients: [] }, comment: 'ok' } })).status, 202);
    const sent = g.sb.admin.messages(ALICE, 'sentitems').find((m) => m.subject === 'RE: Form')!;
    assert.deepEqual(g.sb.admin.messageDetail(ALICE, sent.id).to.map((a) => a.address), [BOB]);
    const both = await g.call(`${user}/messages/${original.id}/reply`, { method: 'POST', body: { comment: 'a', message: { body: { contentType: 'text', content: 'b' } } } });
    assert.equal(both.status, 400);
  });

  it('needs Mail.Send', async () => {
    const original = g.sb.admin.deliver(ALICE, { subject: 'x' });
    await g.newToken(['Mail.ReadWrite']);
    try {
      const r = await g.call(`${user}/messages/${original.id}/reply`, { method: 'POST', body: { comment: 'hi' } });
      assert.equal(r.status, 403);
    } finally {
      await g.newToken(null);
    }
  });
});

describe('sandbox request budget (per app and mailbox, sliding window)', () => {
  beforeEach(() => {
    g.sb.admin.reset();
    g.sb.admin.setBudget({ limit: 5, windowMs: 60_000 });
  });

  it('defaults to Outlook\'s 10,000 requests per 10 minutes', () => {
    g.sb.admin.reset();
    assert.deepEqual([g.sb.admin.budget().limit, g.sb.admin.budget().windowMs], [10_000, 600_000]);
  });

  it('answers 429 with Retry-After past the limit, and again once the oldest requests left the window', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await g.call(`${user}/mailFolders/inbox`)).status, 200);
    const refused = await g.call(`${user}/mailFolders/inbox`);
    assert.equal(refused.status, 429);
    assert.equal(refused.json.error.code, 'TooManyRequests');
    assert.equal(refused.headers.get('retry-after'), '60');
    // Another mailbox has its own budget.
    assert.equal((await g.call(`/v1.0/users/${BOB}/mailFolders/inbox`)).status, 200);
    now += 30_000;
    assert.equal((await g.call(`${user}/mailFolders/inbox`)).status, 429, 'the refused request counted too');
    now += 30_001;
    assert.equal((await g.call(`${user}/mailFolders/inbox`)).status, 200);
    assert.equal(g.sb.admin.budget().throttled, 2);
  });

  it('counts each $batch sub-request, and each refused one answers 429 inside the batch', async () => {
    const requests = Array.from({ length: 7 }, (_, i) => ({ id: String(i + 1), method: 'GET', url: `/users/${ALICE}/mailFolders/inbox`, ...(i ? { dependsOn: [String(i)] } : {}) }));
    const r = await g.call('/v1.0/$batch', { method: 'POST', body: { requests: requests.map(({ dependsOn: _d, ...x }) => x) } });
    assert.equal(r.status, 200);
    const statuses = (r.json.responses as Json[]).map((x) => x.status).sort();
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
    const throttled = (r.json.responses as Json[]).find((x) => x.status === 429)!;
    assert.ok(Number(throttled.headers['Retry-After']) >= 1);
    assert.equal(g.sb.admin.budget().windows.find((w) => w.upn === ALICE)!.used, 7);
  });

  it('does not count OneDrive requests (not an Outlook resource)', async () => {
    await g.newToken(['Mail.ReadWrite', 'Files.ReadWrite.All']);
    try {
      for (let i = 0; i < 8; i++) assert.equal((await g.call(`${user}/drive/root`)).status, 200);
      assert.equal((await g.call(`${user}/mailFolders/inbox`)).status, 200);
    } finally {
      await g.newToken(null);
    }
  });

  it('is set over HTTP too, and a bad value names the fix', async () => {
    const set = await g.call('/_sandbox/options', { method: 'POST', auth: false, body: { budget: { limit: 2, windowMs: 6000 } } });
    assert.equal(set.status, 200);
    assert.deepEqual((await g.call('/_sandbox/budget', { auth: false })).json.limit, 2);
    const bad = await g.call('/_sandbox/budget', { method: 'POST', auth: false, body: { limit: 0 } });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /limit must be a positive whole number.*10000/);
  });
});
