import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hostOf, signIn, startHarness, type Harness } from '../helpers/harness.ts';

const ALICE = 'alice@contoso.test';

const JOBS = `jobs:
  - name: files
    type: inbox-rules
    schedule: "*/5 * * * *"
    rules:
      - name: receipts
        match: { subjectContains: "[save]" }
        actions: [ { saveAttachments: { to: "./saved/{yyyy}", types: [pdf, text/plain] } } ]
  - name: away
    type: inbox-rules
    schedule: "*/5 * * * *"
    rules:
      - name: auto-reply
        match: { subjectContains: "[ask]" }
        actions: [ { reply: { template: "Hello {{sender.name}}, about {{subject}}: I am away.", oncePerSenderDays: 7 } } ]
  - name: later
    type: inbox-rules
    schedule: "*/5 * * * *"
    rules:
      - name: later
        match: { subjectContains: "[later]" }
        actions: [ { markRead: true }, { snooze: "2d" } ]
`;

describe('rules v2 actions through the sandbox: saveAttachments, reply, snooze', () => {
  let h: Harness;
  const job = (name: string) => h.rt.runner.run(name, {});

  before(async () => {
    h = await startHarness({ jobsFile: JOBS });
    await signIn(h);
    // Every job's first run starts its sync: only mail that arrives afterwards is acted on.
    for (const name of ['files', 'away', 'later']) assert.equal((await job(name)).ok, true);
  });
  after(() => h?.close());

  test('saveAttachments: safe names, never over a file, each attachment once ever, resumed after a failure', async () => {
    const year = String(new Date().getUTCFullYear());
    const dir = path.join(h.dir, 'saved', year);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'invoice.pdf'), 'already here');
    const m = h.sandbox.admin.deliver(ALICE, {
      subject: '[save] receipts', from: 'shop@shop.example.com', attachments: [
        { name: 'invoice.pdf', contentType: 'application/pdf', content: Buffer.from('%PDF one') },
        { name: '../../escape.txt', contentType: 'text/plain', content: Buffer.from('notes') },
        { name: 'photo.jpg', contentType: 'image/jpeg', content: Buffer.from('jpg') },
        { name: 'logo.pdf', contentType: 'application/pdf', content: Buffer.from('inline'), isInline: true, contentId: 'logo' },
      ],
    });
    const [, escape] = h.sandbox.admin.messageDetail(ALICE, m.id).attachments;
    // The second attachment's bytes cannot be read for now: the run fails after saving the first.
    h.sandbox.admin.injectFault({ kind: '503', times: 100, retryAfter: '0', match: { pathContains: `attachments/${escape!.id.replace(/=+$/, "")}` } });
    const failed = await job('files');
    assert.equal(failed.ok, false);
    assert.deepEqual(readdirSync(dir).sort(), ['invoice (1).pdf', 'invoice.pdf']);
    h.sandbox.admin.clearFaults();
    const resumed = await job('files');
    assert.equal(resumed.ok, true, resumed.error);
    assert.deepEqual(readdirSync(dir).sort(), ['escape.txt', 'invoice (1).pdf', 'invoice.pdf'], 'the .txt by type, not the jpg or the inline pdf; nothing outside the folder');
    assert.equal(readFileSync(path.join(dir, 'invoice.pdf'), 'utf8'), 'already here', 'never over a file');
    assert.equal(readFileSync(path.join(dir, 'invoice (1).pdf'), 'utf8'), '%PDF one');
    assert.equal(readFileSync(path.join(dir, 'escape.txt'), 'utf8'), 'notes');
    assert.deepEqual(readdirSync(path.join(h.dir, 'saved')), [year]);
    // The same attachments again (a copy of the message's ledger lost, say): nothing is saved twice.
    await h.rt.store.delete(`job:files:ledger:${resumed.actions[0]?.messageId ?? failed.actions[0]!.messageId}`);
    h.sandbox.admin.deliver(ALICE, { subject: '[save] nothing to save', from: 'shop@shop.example.com' });
    const again = await job('files');
    assert.equal(again.ok, true, again.error);
    assert.deepEqual(readdirSync(dir).sort(), ['escape.txt', 'invoice (1).pdf', 'invoice.pdf']);
    assert.ok(again.actions.some((a) => a.result === 'skipped' && /no attachment/.test(a.error ?? '')));
  });

  test('reply: escaped placeholders, once per sender per window, never to lists, robots or oneself', async () => {
    h.sandbox.admin.deliver(ALICE, { subject: '[ask] <b>prices</b> & terms', from: { name: 'Dana <Buyer>', address: 'dana@fabrikam.test' } });
    h.sandbox.admin.deliver(ALICE, { subject: '[ask] list', from: 'list@lists.example.com', internetMessageHeaders: [{ name: 'List-Id', value: '<x.lists.example.com>' }] });
    h.sandbox.admin.deliver(ALICE, { subject: '[ask] robot', from: 'no-reply@service.example.com' });
    h.sandbox.admin.deliver(ALICE, { subject: '[ask] auto', from: 'bot@service.example.com', internetMessageHeaders: [{ name: 'Auto-Submitted', value: 'auto-generated' }] });
    h.sandbox.admin.deliver(ALICE, { subject: '[ask] me', from: ALICE });
    const first = await job('away');
    assert.equal(first.ok, true, first.error);
    h.sandbox.admin.deliver(ALICE, { subject: '[ask] again', from: 'dana@fabrikam.test' });
    const second = await job('away');
    assert.equal(second.ok, true, second.error);
    const result = { actions: [...first.actions, ...second.actions] };
    const sent = h.sandbox.admin.messages(ALICE, 'sentitems').filter((m) => /\[ask\]/.test(m.subject));
    assert.equal(sent.length, 1, sent.map((m) => m.subject).join(', '));
    const body = h.sandbox.admin.messageDetail(ALICE, sent[0]!.id).body;
    assert.match(body, /Hello Dana &lt;Buyer&gt;, about \[ask\] &lt;b&gt;prices&lt;\/b&gt; &amp; terms: I am away\./);
    const skipped = result.actions.filter((a) => a.result === 'skipped').map((a) => `${a.subject}: ${a.error}`);
    assert.equal(skipped.length, 5, skipped.join('\n'));
    assert.ok(skipped.some((s) => /^\[ask\] again: dana@fabrikam\.test already got a reply/.test(s)));
    assert.ok(skipped.some((s) => /^\[ask\] list: .*List-Id/.test(s)));
    assert.ok(skipped.some((s) => /^\[ask\] robot: .*no-reply@service\.example\.com/.test(s)));
    assert.ok(skipped.some((s) => /^\[ask\] auto: .*Auto-Submitted/.test(s)));
    assert.ok(skipped.some((s) => /^\[ask\] me: never a reply to your own address/.test(s)));
  });

  test('reply: two messages of one sender on the same page get one reply', async () => {
    h.sandbox.admin.deliver(ALICE, { subject: '[ask] one', from: 'erin@fabrikam.test' });
    h.sandbox.admin.deliver(ALICE, { subject: '[ask] two', from: 'erin@fabrikam.test' });
    const result = await job('away');
    assert.equal(result.ok, true, result.error);
    const toErin = h.sandbox.admin.messages(ALICE, 'sentitems').filter((m) => /\[ask\] (one|two)/.test(m.subject));
    assert.equal(toErin.length, 1);
    assert.equal(result.actions.filter((a) => a.result === 'skipped').length, 1);
  });

  test('snooze: to the Snoozed folder, back to the Inbox unread once its time has come, kept in the store', async () => {
    const m = h.sandbox.admin.deliver(ALICE, { subject: '[later] read this', from: 'boss@contoso.test' });
    const first = await job('later');
    assert.equal(first.ok, true, first.error);
    const where = () => h.sandbox.admin.folders(ALICE).find((f) => h.sandbox.admin.messages(ALICE, f.id).some((x) => x.subject === '[later] read this'))!;
    assert.equal(where().displayName, 'Snoozed');
    const snoozed = (await h.rt.store.get<{ id: string; until: string; subject: string }[]>('job:later:snoozed'))!;
    assert.equal(snoozed.length, 1);
    assert.equal(snoozed[0]!.subject, '[later] read this');
    const until = Date.parse(snoozed[0]!.until);
    assert.ok(until - Date.now() > 47 * 3600_000 && until - Date.now() <= 48 * 3600_000, snoozed[0]!.until);
    // The dashboard lists it with its time.
    const page = await h.http.get('/').set('Host', hostOf(h));
    assert.match(page.text, /data-testid="snoozed"[\s\S]*\[later\] read this[\s\S]*UTC/);
    // Not yet due: stays. Then its time comes (the stored time moved to the past stands in for two days passing).
    assert.equal((await job('later')).ok, true);
    assert.equal(where().displayName, 'Snoozed');
    await h.rt.store.set('job:later:snoozed', [{ ...snoozed[0]!, until: new Date(Date.now() - 1000).toISOString() }]);
    const woke = await job('later');
    assert.equal(woke.ok, true, woke.error);
    assert.equal(where().wellKnownName, 'inbox');
    const back = h.sandbox.admin.messages(ALICE, 'inbox').find((x) => x.subject === '[later] read this')!;
    assert.equal(back.isRead, false, 'back unread');
    assert.ok(woke.actions.some((a) => a.action === 'unsnooze'));
    assert.deepEqual(await h.rt.store.get('job:later:snoozed'), []);
    // The ledger keeps it from being snoozed again by the same rule.
    assert.equal((await job('later')).ok, true);
    assert.equal(where().wellKnownName, 'inbox');
    void m;
  });
});
