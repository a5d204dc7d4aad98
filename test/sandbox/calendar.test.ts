import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Agent, fetch } from 'undici';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';

type Json = Record<string, any>;
const ALICE = 'alice@contoso.test';
const user = `/v1.0/users/${ALICE}`;
let sb: Sandbox;
let agent: Agent;

async function tokenFor(roles: string[] | null): Promise<string> {
  sb.admin.setGrantedRoles(sb.confidentialClient.clientId, roles);
  const r = await fetch(`${sb.url}/${sb.tenantId}/oauth2/v2.0/token`, {
    method: 'POST', dispatcher: agent,
    body: new URLSearchParams({ client_id: sb.confidentialClient.clientId, client_secret: sb.confidentialClient.clientSecret, grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default' }),
  });
  return ((await r.json()) as Json).access_token;
}

let token: string;
async function call(path: string, init: { method?: string; headers?: Record<string, string>; body?: unknown; token?: string } = {}) {
  const res = await fetch(path.startsWith('http') ? path : `${sb.url}${path}`, {
    method: init.method ?? 'GET', dispatcher: agent,
    headers: { authorization: `Bearer ${init.token ?? token}`, 'content-type': 'application/json', ...init.headers },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  return { status: res.status, text, json: (text ? JSON.parse(text) : undefined) as Json };
}

/** Follows a delta round from `link` to its deltaLink. */
async function round(link: string, pageSize?: number): Promise<{ value: Json[]; pages: number; deltaLink: string }> {
  const value: Json[] = [];
  let pages = 0;
  for (let next = link; ;) {
    const r = await call(next, { headers: pageSize ? { prefer: `odata.maxpagesize=${pageSize}` } : {} });
    assert.equal(r.status, 200, r.text);
    pages++;
    value.push(...r.json.value);
    if (r.json['@odata.deltaLink']) return { value, pages, deltaLink: r.json['@odata.deltaLink'] };
    assert.ok(r.json['@odata.nextLink'], 'a page without deltaLink carries a nextLink');
    next = r.json['@odata.nextLink'];
  }
}

const start = '2026-12-07T00:00:00Z';
const end = '2026-12-31T00:00:00Z';
const first = `${user}/calendarView/delta?startDateTime=${start}&endDateTime=${end}`;

before(async () => {
  sb = await startSandbox({ dataDir: mkdtempSync(join(tmpdir(), 'sb-cal-')), port: 0, persist: false });
  agent = new Agent({ connect: { ca: sb.caPem } });
  token = await tokenFor(null);
});
after(async () => {
  await sb.close();
  await agent.close();
});
beforeEach(() => sb.admin.clearEvents(ALICE));

describe('sandbox calendar: calendarView delta', () => {
  it('pages with Prefer: odata.maxpagesize; occurrences and exceptions, not masters; the window lives in the links', async () => {
    for (let i = 0; i < 4; i++) sb.admin.addEvent(ALICE, { subject: `Single ${i}`, start: `2026-12-${String(8 + i).padStart(2, '0')}T09:00:00Z`, end: `2026-12-${String(8 + i).padStart(2, '0')}T10:00:00Z`, organizer: 'bob@contoso.test' });
    const series = sb.admin.addEvent(ALICE, { subject: 'Weekly', start: '2026-12-08T08:00:00Z', end: '2026-12-08T08:30:00Z', organizer: 'bob@contoso.test', recurrence: { type: 'weekly', count: 6 } });
    sb.admin.addEvent(ALICE, { subject: 'Outside', start: '2027-02-01T09:00:00Z', end: '2027-02-01T10:00:00Z' });
    const r = await round(first, 3);
    assert.equal(r.pages, 3);
    assert.equal(r.value.length, 8, '4 singles + the 4 weekly occurrences inside the window');
    const occurrences = r.value.filter((e) => e.type === 'occurrence');
    assert.equal(occurrences.length, 4);
    assert.ok(occurrences.every((o) => o.seriesMasterId === series.id && o.id !== series.id));
    assert.ok(!r.value.some((e) => e.type === 'seriesMaster'));
    assert.match(r.deltaLink, /\/calendarView\/delta\?\$deltatoken=/);
    assert.ok(!r.deltaLink.includes('startDateTime'));
    const quiet = await call(r.deltaLink);
    assert.deepEqual(quiet.json.value, []);
    assert.ok(quiet.json['@odata.deltaLink']);
  });

  it('later rounds: changes, answers, moves out of the window and deletions (@removed deleted); 410 once expired', async () => {
    const a = sb.admin.addEvent(ALICE, { subject: 'A', start: '2026-12-08T09:00:00Z', end: '2026-12-08T10:00:00Z', organizer: 'bob@contoso.test' });
    const b = sb.admin.addEvent(ALICE, { subject: 'B', start: '2026-12-09T09:00:00Z', end: '2026-12-09T10:00:00Z', organizer: 'bob@contoso.test' });
    const c = sb.admin.addEvent(ALICE, { subject: 'C', start: '2026-12-10T09:00:00Z', end: '2026-12-10T10:00:00Z', organizer: 'bob@contoso.test' });
    const series = sb.admin.addEvent(ALICE, { subject: 'S', start: '2026-12-08T08:00:00Z', end: '2026-12-08T08:30:00Z', organizer: 'bob@contoso.test', recurrence: { type: 'daily', count: 3 } });
    const initial = await round(first);
    const occurrence = initial.value.find((e) => e.seriesMasterId === series.id && e.start.dateTime.startsWith('2026-12-09'))!;
    sb.admin.respondAsPerson(ALICE, a.id, 'accept');
    sb.admin.updateEvent(ALICE, b.id, { start: '2027-03-01T09:00:00Z', end: '2027-03-01T10:00:00Z' });
    sb.admin.removeEvent(ALICE, c.id);
    sb.admin.updateEvent(ALICE, occurrence.id, { location: 'Room 9' });
    const next = await round(initial.deltaLink);
    const byId = new Map(next.value.map((e) => [e.id, e]));
    assert.equal(byId.get(a.id)!.responseStatus.response, 'accepted');
    assert.deepEqual(byId.get(b.id), { '@odata.type': '#microsoft.graph.event', id: b.id, '@removed': { reason: 'deleted' } });
    assert.deepEqual(byId.get(c.id)!['@removed'], { reason: 'deleted' });
    assert.equal(byId.get(occurrence.id)!.type, 'exception');
    assert.equal(byId.get(occurrence.id)!.location.displayName, 'Room 9');
    assert.equal(next.value.length, 4);
    sb.admin.expireDeltaTokens();
    const expired = await call(next.deltaLink);
    assert.equal(expired.status, 410);
    assert.equal(expired.json.error.code, 'SyncStateNotFound');
  });

  it('GET /users/{id}/calendar: the primary calendar (what an app-only confinement probe reads for calendar-only jobs)', async () => {
    const r = await call(`${user}/calendar?$select=id`);
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.id, /^AAMk/);
    assert.equal(r.json.name, undefined);
  });

  it('refuses $select and a missing window like Graph', async () => {
    const select = await call(`${first}&$select=subject`);
    assert.equal(select.status, 400);
    const noWindow = await call(`${user}/calendarView/delta`);
    assert.equal(noWindow.status, 400);
    assert.equal(noWindow.json.error.code, 'ErrorInvalidParameter');
  });

  it('an invitation with deliverAt appears only once the sandbox clock reaches it', async () => {
    const { deltaLink } = await round(first);
    sb.admin.addEvent(ALICE, { subject: 'Later', start: '2026-12-11T09:00:00Z', end: '2026-12-11T10:00:00Z', organizer: 'bob@contoso.test', deliverAt: new Date(Date.now() + 5 * 60_000).toISOString() });
    const before = await round(deltaLink);
    assert.deepEqual(before.value, []);
    sb.admin.setClockOffset(10 * 60_000);
    try {
      const afterwards = await round(before.deltaLink);
      assert.deepEqual(afterwards.value.map((e) => e.subject), ['Later']);
    } finally {
      sb.admin.setClockOffset(0);
    }
  });
});

describe('sandbox calendar: answers and changes', () => {
  it('accept, tentativelyAccept, decline: 202 with an empty body; responseStatus changes; each answer is recorded', async () => {
    const e = sb.admin.addEvent(ALICE, { subject: 'Invite', start: '2026-12-08T09:00:00Z', end: '2026-12-08T10:00:00Z', organizer: 'bob@contoso.test' });
    const before = await call(`${user}/events/${e.id}?$select=responseStatus,isOrganizer`);
    assert.equal(before.json.responseStatus.response, 'notResponded');
    assert.equal(before.json.isOrganizer, false);
    for (const [verb, response] of [['tentativelyAccept', 'tentativelyAccepted'], ['decline', 'declined'], ['accept', 'accepted']] as const) {
      const r = await call(`${user}/events/${e.id}/${verb}`, { method: 'POST', body: { comment: 'ok', sendResponse: verb !== 'decline' } });
      assert.equal(r.status, 202);
      assert.equal(r.text, '');
      assert.equal((await call(`${user}/events/${e.id}`)).json.responseStatus.response, response);
    }
    assert.deepEqual(sb.admin.responses(ALICE).map((r) => `${r.response}:${r.sendResponse}:${r.by}`), ['tentativelyAccepted:true:graph', 'declined:false:graph', 'accepted:true:graph']);
  });

  it('answering a series answers its occurrences; answering one occurrence makes it an exception', async () => {
    const s = sb.admin.addEvent(ALICE, { subject: 'Series', start: '2026-12-08T08:00:00Z', end: '2026-12-08T08:30:00Z', organizer: 'bob@contoso.test', recurrence: { type: 'daily', count: 3 } });
    const { value } = await round(first);
    const [o1, o2] = value.filter((x) => x.seriesMasterId === s.id);
    assert.equal((await call(`${user}/events/${o1!.id}/decline`, { method: 'POST', body: {} })).status, 202);
    assert.equal((await call(`${user}/events/${s.id}/accept`, { method: 'POST', body: {} })).status, 202);
    const after = (await round(first)).value.filter((x) => x.seriesMasterId === s.id);
    assert.equal(after.find((x) => x.id === o1!.id)!.responseStatus.response, 'declined', 'the occurrence keeps its own answer');
    assert.equal(after.find((x) => x.id === o2!.id)!.responseStatus.response, 'accepted');
    assert.equal(after.find((x) => x.id === o1!.id)!.type, 'exception');
    assert.equal((await call(`${user}/events/${s.id}`)).json.type, 'seriesMaster');
    const listed = (await call(`${user}/events?$top=50`)).json.value as Json[];
    assert.deepEqual(listed.map((x) => `${x.subject}:${x.type}`), ['Series:seriesMaster'], '/events lists the master, a calendar view the occurrences');
  });

  it('one cannot answer one\'s own meeting; unknown ids are 404', async () => {
    const mine = sb.admin.addEvent(ALICE, { subject: 'Mine', start: '2026-12-08T09:00:00Z', end: '2026-12-08T10:00:00Z' });
    const r = await call(`${user}/events/${mine.id}/accept`, { method: 'POST', body: {} });
    assert.equal(r.status, 400);
    assert.equal((await call(`${user}/events/AAMkAGnope=/accept`, { method: 'POST', body: {} })).status, 404);
  });

  it('PATCH categories, showAs, reminderMinutesBeforeStart → 200 with the event; bad values 400', async () => {
    const e = sb.admin.addEvent(ALICE, { subject: 'Invite', start: '2026-12-08T09:00:00Z', end: '2026-12-08T10:00:00Z', organizer: 'bob@contoso.test' });
    const r = await call(`${user}/events/${e.id}`, { method: 'PATCH', body: { categories: ['Large'], showAs: 'tentative', reminderMinutesBeforeStart: 30 } });
    assert.equal(r.status, 200);
    assert.deepEqual([r.json.categories, r.json.showAs, r.json.reminderMinutesBeforeStart], [['Large'], 'tentative', 30]);
    assert.equal((await call(`${user}/events/${e.id}`, { method: 'PATCH', body: { showAs: 'away' } })).status, 400);
  });

  it('writes need Calendars.ReadWrite; Calendars.Read still reads', async () => {
    const e = sb.admin.addEvent(ALICE, { subject: 'Invite', start: '2026-12-08T09:00:00Z', end: '2026-12-08T10:00:00Z', organizer: 'bob@contoso.test' });
    const readOnly = await tokenFor(['Calendars.Read']);
    try {
      assert.equal((await call(first, { token: readOnly })).status, 200);
      const denied = await call(`${user}/events/${e.id}/accept`, { method: 'POST', body: {}, token: readOnly });
      assert.equal(denied.status, 403);
      assert.equal(denied.json.error.code, 'ErrorAccessDenied');
    } finally {
      sb.admin.setGrantedRoles(sb.confidentialClient.clientId, null);
    }
  });
});
