import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dayRange } from '../../src/graph/timezone.ts';
import { REPO, signIn, startHarness, type Harness } from '../helpers/harness.ts';

const ALICE = 'alice@contoso.test';

/** The custom job exactly as the README shows it. */
function readmeExample(): string {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const m = /```js\n\/\/ jobs\/count-unread\.js\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'the README has the jobs/count-unread.js example');
  return m[1]!;
}

const HELPERS = `export default {
  async run(ctx) {
    const unread = [];
    for await (const m of ctx.mailbox.messages('inbox', { select: ['subject', 'isRead'], filter: 'isRead eq false', limit: 5 })) unread.push(m.subject);
    const folders = await ctx.mailbox.childFolders('msgfolderroot');
    const settings = await ctx.mailbox.settings();
    const now = new Date();
    const events = await ctx.mailbox.events(new Date(now.getTime() - 86400000), new Date(now.getTime() + 86400000), { timeZone: settings.timeZone });
    await ctx.store.set('seen', { unread, folders: folders.map((f) => f.displayName), timeZone: settings.timeZone, events: events.map((e) => e.subject) });
    ctx.report.examined = unread.length;
  },
};
`;

describe('agenda-digest and custom jobs', () => {
  let h: Harness;
  const hooks: unknown[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      hooks.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  let berlinDay: ReturnType<typeof dayRange>;

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/digest`;
    const jobsDir = mkdtempSync(path.join(tmpdir(), 'ma-jobs-'));
    writeFileSync(path.join(jobsDir, 'count-unread.js'), readmeExample());
    writeFileSync(path.join(jobsDir, 'helpers.mjs'), HELPERS);
    h = await startHarness({
      jobsFile: `jobs:
  - name: agenda
    type: agenda-digest
    schedule: "0 7 * * 1-5"
    sendTo: me
  - name: agenda-file
    type: agenda-digest
    schedule: "0 7 * * 1-5"
    sendTo: out/agenda.html
  - name: agenda-hook
    type: agenda-digest
    schedule: "0 7 * * 1-5"
    sendTo: ${hookUrl}
  - name: count-unread
    module: ${jobsDir}/count-unread.js
    schedule: "0 * * * *"
  - name: helpers
    module: ${jobsDir}/helpers.mjs
    schedule: "0 * * * *"
`,
    });
    await signIn(h);
    berlinDay = dayRange(Date.now(), 'Europe/Berlin');
    const at = (hours: number) => new Date(berlinDay.start.getTime() + hours * 3600_000).toISOString();
    h.sandbox.admin.clearEvents(ALICE); // the seeded sample week: these tests count their own events
    h.sandbox.admin.addEvent(ALICE, { subject: '<script>alert(1)</script> & Co', start: at(9), end: at(10), location: 'Room "A" <1>', organizer: { name: 'Bob <b>', address: 'bob@contoso.test' } });
    h.sandbox.admin.addEvent(ALICE, { subject: 'Lunch', start: at(12), end: at(13) });
    h.sandbox.admin.addEvent(ALICE, { subject: 'Yesterday', start: at(-3), end: at(-2) });
    h.sandbox.admin.addEvent(ALICE, { subject: 'Tomorrow', start: at(25), end: at(26) });
  });
  after(async () => {
    await h.close();
    await new Promise((r) => server.close(r));
  });

  test('sendTo: me mails today\'s agenda (mailbox time zone, escaped HTML) to the mailbox itself', async () => {
    const dry = await h.rt.runner.run('agenda', { dryRun: true });
    assert.equal(dry.ok, true, dry.error);
    assert.deepEqual(dry.actions.map((a) => a.result), ['planned']);
    assert.ok(!h.sandbox.admin.messages(ALICE, 'sentitems').some((m) => m.subject.startsWith('Agenda for')), 'the dry run sent nothing');
    const run = await h.rt.runner.run('agenda');
    assert.equal(run.ok, true, run.error);
    assert.equal(run.examined, 2);
    const subject = `Agenda for ${berlinDay.date}: 2 events`;
    assert.deepEqual(run.actions.map((a) => [a.action, a.result, a.subject]), [['sendDigest', 'done', subject]]);
    const got = h.sandbox.admin.messages(ALICE, 'inbox').find((m) => m.subject === subject);
    assert.ok(got, 'the digest arrived in the inbox');
    assert.ok(h.sandbox.admin.messages(ALICE, 'sentitems').some((m) => m.subject === subject));
    assert.match(got.bodyPreview, /09:00–10:00 <script>alert\(1\)<\/script> & Co Room "A" <1> Bob <b> 12:00–13:00 Lunch/, 'times in Berlin time; text intact once unescaped');
    assert.doesNotMatch(got.bodyPreview, /Yesterday|Tomorrow/);
  });

  test('sendTo: a file path writes the HTML, every field escaped; a webhook gets JSON', async () => {
    assert.equal((await h.rt.runner.run('agenda-file')).ok, true);
    const html = readFileSync(path.join(h.dir, 'out', 'agenda.html'), 'utf8');
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt; &amp; Co/);
    assert.match(html, /Room &quot;A&quot; &lt;1&gt;/);
    assert.match(html, /Bob &lt;b&gt;/);
    assert.doesNotMatch(html, /<script>|<b>/);
    assert.match(html, /Times in Europe\/Berlin/);
    assert.equal((await h.rt.runner.run('agenda-hook')).ok, true);
    const hook = hooks[0] as { date: string; events: { subject: string }[]; timeZone: string };
    assert.equal(hook.date, berlinDay.date);
    assert.deepEqual(hook.events.map((e) => e.subject), ['<script>alert(1)</script> & Co', 'Lunch']);
  });

  test('the README custom job runs as written', async () => {
    const run = await h.rt.runner.run('count-unread');
    assert.equal(run.ok, true, run.error);
    const unread = h.sandbox.admin.messages(ALICE, 'inbox').filter((m) => !m.isRead).length;
    assert.equal(await h.rt.store.get('job:count-unread:lastUnread'), unread);
  });

  test('custom jobs get typed mailbox helpers for messages, folders, settings and events', async () => {
    const run = await h.rt.runner.run('helpers');
    assert.equal(run.ok, true, run.error);
    const seen = await h.rt.store.get<{ unread: string[]; folders: string[]; timeZone: string; events: string[] }>('job:helpers:seen');
    assert.equal(seen!.unread.length, 5);
    assert.ok(seen!.folders.includes('Inbox'));
    assert.equal(seen!.timeZone, 'W. Europe Standard Time');
    assert.ok(seen!.events.includes('Lunch'));
  });
});

describe('agenda-digest with timezone: in the jobs file', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ jobsFile: 'timezone: America/New_York\njobs:\n  - name: agenda\n    type: agenda-digest\n    schedule: "0 7 * * *"\n    sendTo: agenda.html\n' });
    await signIn(h);
  });
  after(() => h.close());

  test('the day and the times are New York\'s', async () => {
    const ny = dayRange(Date.now(), 'America/New_York');
    h.sandbox.admin.clearEvents(ALICE);
    h.sandbox.admin.addEvent(ALICE, { subject: 'NY standup', start: new Date(ny.start.getTime() + 8.5 * 3600_000).toISOString(), end: new Date(ny.start.getTime() + 9 * 3600_000).toISOString() });
    const run = await h.rt.runner.run('agenda');
    assert.equal(run.ok, true, run.error);
    const html = readFileSync(path.join(h.dir, 'agenda.html'), 'utf8');
    assert.match(html, /08:30–09:00/);
    assert.match(html, new RegExp(`Agenda for ${ny.date}`));
  });
});
