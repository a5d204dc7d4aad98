import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dayRange } from '../../src/graph/timezone.ts';
import { cli } from '../helpers/cli.ts';
import { hostOf, REPO, signIn, startHarness, type Harness } from '../helpers/harness.ts';

const ALICE = 'alice@contoso.test';
const HOUR = 3_600_000;

/** The calendar-rules example exactly as the README shows it. */
function readmeExample(): string {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const m = /### Calendar rules[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'the README has a calendar-rules example');
  return m[1]!;
}

/** A weekday at least two days ahead, as the Berlin day's midnight (ms). */
function nextBerlinWeekday(): number {
  for (let d = 2; ; d++) {
    const day = dayRange(Date.now() + d * 24 * HOUR, 'Europe/Berlin');
    const weekday = new Date(`${day.date}T12:00:00Z`).getUTCDay();
    if (weekday >= 1 && weekday <= 5) return day.start.getTime();
  }
}

describe('calendar rules through the sandbox: the README example', () => {
  let h: Harness;
  const notified: Record<string, unknown>[] = [];
  const hooked: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      (req.url === '/hook' ? hooked : notified).push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  let day: number;
  const at = (hours: number) => new Date(day + hours * HOUR).toISOString();
  const ids: Record<string, string> = {};

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const notifyUrl = `${base}/notify`;
    h = await startHarness({
      env: { NOTIFY_URL: notifyUrl },
      jobsFile: `${readmeExample()}  - name: moves
    type: calendar-rules
    schedule: "*/10 * * * *"
    rules:
      - name: board-moved
        match: { organizerDomain: board.contoso.test, changed: true }
        actions: [ { notify: true }, { webhook: "${base}/hook" } ]
  - name: hours
    type: calendar-rules
    schedule: "*/10 * * * *"
    rules:
      - name: outside-outlook-hours
        match: { outsideWorkingHours: true, myResponse: none }
        actions: [ { categorize: [After hours] } ]
`,
    });
    await signIn(h);
    h.sandbox.admin.clearEvents(ALICE);
    day = nextBerlinWeekday();
    const crowd = Array.from({ length: 20 }, (_, i) => `person${i}@contoso.test`);
    const add = (key: string, input: Parameters<Harness['sandbox']['admin']['addEvent']>[1]) => (ids[key] = h.sandbox.admin.addEvent(ALICE, input).id);
    add('oneOnOne', { subject: '1:1 Alice / Bob', start: at(10), end: at(10.5), organizer: { name: 'Bob Jones', address: 'bob@contoso.test' }, attendees: [ALICE] });
    add('late', { subject: 'Late sync with Fabrikam', start: at(19), end: at(20), organizer: 'carol@fabrikam.test', attendees: [ALICE, 'carol@fabrikam.test'] });
    add('allHands', { subject: 'All hands', start: at(14), end: at(15), organizer: 'dave@contoso.test', attendees: crowd, isOnlineMeeting: true });
    add('review', { subject: 'Design review', start: at(11), end: at(12), organizer: 'eve@contoso.test', attendees: [ALICE, 'eve@contoso.test'] });
    add('weekly', { subject: 'Weekly 1:1 with Bob', start: at(9), end: at(9.5), organizer: 'bob@contoso.test', attendees: [ALICE], recurrence: { type: 'weekly', count: 3 } });
    add('board', { subject: 'Board meeting', start: at(15), end: at(16), organizer: 'chair@board.contoso.test', attendees: [ALICE] });
    add('mine', { subject: 'Focus time', start: at(16), end: at(17.5) });
  });

  after(async () => {
    await h?.close();
    server.close();
  });

  test('a dry run shows what each rule would do and why, and answers nothing', async () => {
    const result = await h.rt.runner.run('meetings', { dryRun: true });
    assert.equal(result.ok, true, result.error);
    const planned = result.actions.map((a) => ({ ...(a as unknown as Record<string, unknown>) }));
    const of = (id: string) => planned.filter((a) => a.eventId === id).map((a) => `${a.rule}:${a.action}:${JSON.stringify(a.value)}`);
    assert.deepEqual(of(ids.oneOnOne!), ['manager-one-on-ones:respond:{"response":"accept","sendResponse":true}']);
    assert.deepEqual(of(ids.late!), ['after-hours:respond:{"response":"decline","sendResponse":true,"comment":"Sorry, that is after my working hours."}']);
    assert.deepEqual(of(ids.allHands!), ['large-meetings:respond:{"response":"tentative","sendResponse":true}', 'large-meetings:categorize:["Large meeting"]']);
    assert.deepEqual(of(ids.review!), []);
    assert.deepEqual(of(ids.mine!), [], 'never an answer to one\'s own event');
    // A series: one answer, on the series master, though three occurrences are in the window.
    assert.deepEqual(of(ids.weekly!), ['manager-one-on-ones:respond:{"response":"accept","sendResponse":true}']);
    const why = planned.find((a) => a.eventId === ids.oneOnOne)!.why;
    assert.equal(why, 'organizer=bob@contoso.test, subjectContains=1:1');
    assert.equal(planned.find((a) => a.eventId === ids.late)!.why, 'outsideWorkingHours=true');
    assert.ok(planned.every((a) => a.result === 'planned'));
    assert.deepEqual(h.sandbox.admin.responses(ALICE), []);
  });

  test('the installed binary shows the same plan with run --dry-run --json', async () => {
    const out = await cli(['run', 'meetings', '--dry-run', '--json'], h.env, h.dir, { timeoutMs: 120_000 });
    assert.equal(out.code, 0, out.stderr);
    const result = JSON.parse(out.stdout) as { ok: boolean; dryRun: boolean; actions: Record<string, unknown>[] };
    assert.equal(result.dryRun, true);
    const oneOnOne = result.actions.find((a) => a.eventId === ids.oneOnOne)!;
    assert.deepEqual([oneOnOne.messageId, oneOnOne.rule, oneOnOne.action, oneOnOne.why], [ids.oneOnOne, 'manager-one-on-ones', 'respond', 'organizer=bob@contoso.test, subjectContains=1:1']);
    assert.equal(result.actions.length, 5);
    assert.deepEqual(h.sandbox.admin.responses(ALICE), []);
  });

  test('a real run answers each invitation once (202), and the next quiet run is one Graph request', async () => {
    const result = await h.rt.runner.run('meetings');
    assert.equal(result.ok, true, result.error);
    assert.ok(result.actions.every((a) => a.result === 'done'), JSON.stringify(result.actions));
    const responses = h.sandbox.admin.responses(ALICE).map((r) => `${r.eventId === ids.weekly ? 'weekly' : Object.keys(ids).find((k) => ids[k] === r.eventId)}:${r.response}`).sort();
    assert.deepEqual(responses, ['allHands:tentativelyAccepted', 'late:declined', 'oneOnOne:accepted', 'weekly:accepted']);
    const late = h.sandbox.admin.responses(ALICE).find((r) => r.eventId === ids.late)!;
    assert.equal(late.comment, 'Sorry, that is after my working hours.');
    const stored = h.sandbox.admin.events(ALICE).find((e) => e.id === ids.allHands)!;
    assert.deepEqual(stored.categories, ['Large meeting']);
    assert.equal(stored.responseStatus?.response, 'tentativelyAccepted');

    // The audit log, and so the dashboard, lists the calendar actions like mail actions.
    const audit = await h.rt.runner.recentActions({ job: 'meetings' });
    assert.ok(audit.some((a) => a.messageId === ids.allHands && a.action === 'categorize' && a.result === 'done'));
    const page = await h.http.get('/').set('Host', hostOf(h));
    assert.equal(page.status, 200);
    assert.match(page.text, /Late sync with Fabrikam/);

    const quiet = await h.rt.runner.run('meetings');
    assert.equal(quiet.ok, true, quiet.error);
    assert.deepEqual(quiet.actions, []);
    assert.equal(quiet.graphRequests, 1);
  });

  test('a crash between the answer and its ledger write does not answer twice', async () => {
    ids.crash = h.sandbox.admin.addEvent(ALICE, { subject: '1:1 Alice / Bob (extra)', start: at(12), end: at(12.5), organizer: 'bob@contoso.test', attendees: [ALICE] }).id;
    const store = h.rt.store;
    const setMany = store.setMany.bind(store);
    store.setMany = async (entries) => {
      if (entries.some((e) => e.key.endsWith(':calendar:delta'))) throw new Error('power cut');
      return setMany(entries);
    };
    try {
      const crashed = await h.rt.runner.run('meetings');
      assert.equal(crashed.ok, false);
      assert.match(crashed.error ?? '', /power cut/);
    } finally {
      store.setMany = setMany;
    }
    assert.equal(h.sandbox.admin.responses(ALICE).filter((r) => r.eventId === ids.crash).length, 1);
    const again = await h.rt.runner.run('meetings');
    assert.equal(again.ok, true, again.error);
    assert.equal(h.sandbox.admin.responses(ALICE).filter((r) => r.eventId === ids.crash).length, 1, 'answered once only');
    assert.equal((await h.rt.runner.run('meetings')).graphRequests, 1);
  });

  test("the person's own answer wins, also when given just before the agent answers", async () => {
    ids.manual = h.sandbox.admin.addEvent(ALICE, { subject: '1:1 Alice / Bob (Friday)', start: at(13), end: at(13.5), organizer: 'bob@contoso.test', attendees: [ALICE] }).id;
    h.sandbox.admin.respondAsPerson(ALICE, ids.manual, 'decline');
    ids.race = h.sandbox.admin.addEvent(ALICE, { subject: '1:1 Alice / Bob (race)', start: at(16.5), end: at(17), organizer: 'bob@contoso.test', attendees: [ALICE] }).id;
    // The person answers after the agent read the change but before it answers (the ledger read sits between).
    const store = h.rt.store;
    const getMany = store.getMany.bind(store);
    store.getMany = async (keys) => {
      if (keys.some((k) => k.includes(ids.race!))) h.sandbox.admin.respondAsPerson(ALICE, ids.race!, 'tentativelyAccept');
      return getMany(keys);
    };
    let result;
    try {
      result = await h.rt.runner.run('meetings');
    } finally {
      store.getMany = getMany;
    }
    assert.equal(result.ok, true, result.error);
    const forEvent = (id: string) => h.sandbox.admin.responses(ALICE).filter((r) => r.eventId === id).map((r) => `${r.by}:${r.response}`);
    assert.deepEqual(forEvent(ids.manual), ['person:declined']);
    assert.deepEqual(forEvent(ids.race), ['person:tentativelyAccepted']);
    const race = result.actions.find((a) => a.messageId === ids.race)!;
    assert.equal(race.result, 'skipped');
    assert.match(race.error ?? '', /already answered \(tentative\)/);
  });

  test('invitations arriving later are answered by the run after they arrive; a moved meeting is notified once', async () => {
    const first = await h.rt.runner.run('moves');
    assert.equal(first.ok, true, first.error);
    assert.deepEqual(first.actions, [], 'nothing moved yet');
    h.sandbox.admin.updateEvent(ALICE, ids.board!, { start: at(17), end: at(18) });
    const moved = await h.rt.runner.run('moves');
    assert.equal(moved.ok, true, moved.error);
    assert.deepEqual(moved.actions.map((a) => `${a.rule}:${a.action}:${a.result}`).sort(), ['board-moved:notify:done', 'board-moved:webhook:done']);
    assert.equal(hooked.length, 1);
    assert.equal((hooked[0]!.calendarEvent as { subject: string }).subject, 'Board meeting');
    assert.equal(notified.length, 1);
    assert.match(String(notified[0]!.text), /"Board meeting".*board-moved.*moved/);
    assert.equal((notified[0]!.calendarEvent as { id: string }).id, ids.board);
    assert.deepEqual((await h.rt.runner.run('moves')).actions, []);
    assert.equal(notified.length, 1);
    assert.equal(hooked.length, 1);

    // Moved again, and the run dies after telling but before its commit: the next run does not tell twice.
    h.sandbox.admin.updateEvent(ALICE, ids.board!, { location: 'Board room' });
    const store = h.rt.store;
    const setMany = store.setMany.bind(store);
    store.setMany = async (entries) => {
      if (entries.some((e) => e.key.endsWith(':calendar:delta'))) throw new Error('power cut');
      return setMany(entries);
    };
    try {
      assert.equal((await h.rt.runner.run('moves')).ok, false);
    } finally {
      store.setMany = setMany;
    }
    assert.equal(notified.length, 2);
    assert.equal(hooked.length, 2);
    const replay = await h.rt.runner.run('moves');
    assert.deepEqual(replay.actions.map((a) => `${a.action}:${a.result}`).sort(), ['notify:skipped', 'webhook:skipped']);
    assert.match(replay.actions[0]!.error ?? '', /interrupted/);
    assert.equal(notified.length, 2);
    assert.equal(hooked.length, 2);

    ids.later = h.sandbox.admin.addEvent(ALICE, { subject: '1:1 Alice / Bob (later)', start: at(8.5), end: at(9), organizer: 'bob@contoso.test', attendees: [ALICE], deliverAt: new Date(Date.now() + 5 * 60_000).toISOString() }).id;
    const before = await h.rt.runner.run('meetings');
    assert.deepEqual(before.actions, [], 'not on the calendar yet');
    h.sandbox.admin.setClockOffset(10 * 60_000);
    const arrived = await h.rt.runner.run('meetings');
    assert.deepEqual(arrived.actions.map((a) => `${a.messageId === ids.later}:${a.action}:${a.result}`), ['true:respond:done']);
  });

  test("without workingHours: in the job, Outlook's working hours count, in their own time zone", async () => {
    // The sandbox's mailboxSettings.workingHours: Monday to Friday 08:00-17:00, W. Europe Standard Time.
    ids.evening = h.sandbox.admin.addEvent(ALICE, { subject: 'Evening call', start: at(17.5), end: at(18), organizer: 'eve@contoso.test', attendees: [ALICE] }).id;
    ids.afternoon = h.sandbox.admin.addEvent(ALICE, { subject: 'Afternoon call', start: at(16), end: at(17), organizer: 'eve@contoso.test', attendees: [ALICE] }).id;
    const result = await h.rt.runner.run('hours');
    assert.equal(result.ok, true, result.error);
    const categorized = result.actions.filter((a) => a.action === 'categorize').map((a) => a.messageId);
    assert.ok(categorized.includes(ids.evening!), 'ends after 17:00');
    assert.ok(!categorized.includes(ids.afternoon!), 'within the hours');
    assert.ok(categorized.includes(ids.late!) === false, 'already answered (declined): myResponse none no longer holds');
  });

  test('an expired delta state starts a new sync without answering anything twice', async () => {
    const count = h.sandbox.admin.responses(ALICE).length;
    h.sandbox.admin.expireDeltaTokens();
    const result = await h.rt.runner.run('meetings');
    assert.equal(result.ok, true, result.error);
    assert.deepEqual(result.actions, []);
    assert.ok(result.examined >= 8, 'the new sync listed the window again');
    assert.equal(h.sandbox.admin.responses(ALICE).length, count);
  });
});
