import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Agent, fetch } from 'undici';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';

type Json = Record<string, any>;
const ALICE = 'alice@contoso.test';
let sb: Sandbox;
let agent: Agent;
let token: string;

async function call(path: string, init: { method?: string; headers?: Record<string, string>; body?: unknown } = {}) {
  const res = await fetch(path.startsWith('http') ? path : `${sb.url}${path}`, {
    method: init.method ?? 'GET',
    dispatcher: agent,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
    body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
  });
  const text = await res.text();
  let json: Json | undefined;
  try {
    json = JSON.parse(text) as Json;
  } catch { /* empty or malformed */ }
  return { status: res.status, headers: res.headers, text, json: json as Json };
}

const batch = (requests: unknown[]) => call('/v1.0/$batch', { method: 'POST', body: { requests } });
const user = `/users/${ALICE}`;

before(async () => {
  sb = await startSandbox({ dataDir: mkdtempSync(join(tmpdir(), 'sb-batch-')), port: 0, persist: false });
  agent = new Agent({ connect: { ca: sb.caPem } });
  const r = await fetch(`${sb.url}/${sb.tenantId}/oauth2/v2.0/token`, {
    method: 'POST', dispatcher: agent,
    body: new URLSearchParams({ client_id: sb.confidentialClient.clientId, client_secret: sb.confidentialClient.clientSecret, grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default' }),
  });
  token = ((await r.json()) as Json).access_token;
});
after(async () => {
  await sb.close();
  await agent.close();
});
beforeEach(() => {
  sb.admin.clearFaults();
  sb.admin.setLatency(0);
  sb.admin.setSubRequestMs(0);
});

describe('sandbox $batch', () => {
  it('answers each sub-request with its own id, status, headers and body', async () => {
    const [a, b] = sb.admin.messages(ALICE, 'inbox');
    const r = await batch([
      { id: '1', method: 'PATCH', url: `${user}/messages/${a!.id}`, headers: { 'content-type': 'application/json' }, body: { isRead: true } },
      { id: '2', method: 'GET', url: `${user}/messages/${b!.id}?$select=subject` },
      { id: '3', method: 'GET', url: `${user}/messages/nope` },
    ]);
    assert.equal(r.status, 200);
    const byId = new Map<string, Json>(r.json.responses.map((x: Json) => [x.id, x]));
    assert.equal(byId.get('1')!.status, 200);
    assert.equal(byId.get('1')!.body.isRead, true);
    assert.equal(byId.get('2')!.body.subject, b!.subject);
    assert.equal(byId.get('3')!.status, 404);
    assert.equal(byId.get('3')!.body.error.code, 'ErrorItemNotFound');
    assert.ok(byId.get('1')!.headers['Content-Type'].startsWith('application/json'));
    assert.equal(sb.admin.messages(ALICE, 'inbox').find((m) => m.id === a!.id)!.isRead, true);
  });

  it('refuses more than 20 requests, duplicate ids, absolute urls and unknown dependencies', async () => {
    const get = (id: string) => ({ id, method: 'GET', url: `${user}/mailFolders/inbox` });
    const tooMany = await batch(Array.from({ length: 21 }, (_, i) => get(String(i))));
    assert.equal(tooMany.status, 400);
    assert.match(tooMany.json.error.message, /limit of 20/);
    assert.equal((await batch(Array.from({ length: 20 }, (_, i) => get(String(i))))).status, 200);
    assert.match((await batch([get('1'), get('1')])).json.error.message, /used twice/);
    assert.match((await batch([{ id: '1', method: 'GET', url: `${sb.url}/v1.0${user}` }])).json.error.message, /relative url/);
    assert.match((await batch([{ ...get('1'), dependsOn: ['9'] }])).json.error.message, /unknown request '9'/);
  });

  it('a failed dependency gives 424 to the rest of the chain, and the chain runs in order', async () => {
    const [a] = sb.admin.messages(ALICE, 'inbox');
    const r = await batch([
      { id: '1', method: 'PATCH', url: `${user}/messages/${a!.id}`, body: { importance: 'high' }, headers: { 'content-type': 'application/json' } },
      { id: '2', method: 'PATCH', url: `${user}/messages/${a!.id}`, body: { importance: 'bogus' }, headers: { 'content-type': 'application/json' }, dependsOn: ['1'] },
      { id: '3', method: 'PATCH', url: `${user}/messages/${a!.id}`, body: { importance: 'low' }, headers: { 'content-type': 'application/json' }, dependsOn: ['2'] },
    ]);
    const byId = new Map<string, Json>(r.json.responses.map((x: Json) => [x.id, x]));
    assert.equal(byId.get('1')!.status, 200);
    assert.equal(byId.get('2')!.status, 400);
    assert.equal(byId.get('3')!.status, 424);
    assert.equal(sb.admin.messages(ALICE, 'inbox').find((m) => m.id === a!.id)!.importance, 'high', 'the 424 request was not run');
  });

  it('each sub-request is throttled on its own, with its own Retry-After', async () => {
    const [a, b, c] = sb.admin.messages(ALICE, 'inbox');
    sb.admin.injectFault({ kind: '429', times: 1, after: 1, match: { method: 'PATCH' }, retryAfter: '0.25' });
    const r = await batch([a, b, c].map((m, i) => ({ id: String(i), method: 'PATCH', url: `${user}/messages/${m!.id}`, headers: { 'content-type': 'application/json' }, body: { categories: ['X'] }, dependsOn: i ? [String(i - 1)] : undefined })));
    const statuses = r.json.responses.sort((x: Json, y: Json) => x.id.localeCompare(y.id)).map((x: Json) => x.status);
    assert.deepEqual(statuses, [200, 429, 424]);
    assert.equal(r.json.responses[1].headers['Retry-After'], '0.25');
  });

  it('sub-requests hold the mailbox slots: one batch of 20 runs 4 at a time, a second batch at the same moment draws 429s', async () => {
    sb.admin.setSubRequestMs(150);
    const get = (id: string) => ({ id, method: 'GET', url: `${user}/mailFolders/inbox` });
    const one = await batch(Array.from({ length: 8 }, (_, i) => get(String(i))));
    assert.ok(one.json.responses.every((x: Json) => x.status === 200), 'alone, a batch never exceeds the limit');
    const [x, y] = await Promise.all([batch(Array.from({ length: 8 }, (_, i) => get(String(i)))), batch(Array.from({ length: 8 }, (_, i) => get(String(i))))]);
    const throttled = [...x.json.responses, ...y.json.responses].filter((s: Json) => s.status === 429);
    assert.ok(throttled.length >= 4, `two unchained batches at once: ${throttled.length} throttled`);
    assert.equal(throttled[0].body.error.code, 'ApplicationThrottled');
    const chains = await Promise.all([0, 1, 2, 3].map(() => batch(Array.from({ length: 3 }, (_, i) => ({ ...get(String(i)), dependsOn: i ? [String(i - 1)] : undefined })))));
    assert.ok(chains.every((c) => c.json.responses.every((s: Json) => s.status === 200)), 'four dependsOn chains fit in the 4 slots');
  });
});

describe('sandbox fault injection', () => {
  it('429 storms, 503, malformed JSON and connection resets hit the next matching requests only', async () => {
    sb.admin.injectFault({ kind: '429', times: 2, match: { pathContains: '/mailFolders/inbox' }, retryAfter: '0.5' });
    const first = await call(`/v1.0${user}/mailFolders/inbox`);
    assert.equal(first.status, 429);
    assert.equal(first.headers.get('retry-after'), '0.5');
    assert.equal(first.json.error.code, 'TooManyRequests');
    assert.equal((await call(`/v1.0${user}`)).status, 200, 'other paths are not affected');
    assert.equal((await call(`/v1.0${user}/mailFolders/inbox`)).status, 429);
    assert.equal((await call(`/v1.0${user}/mailFolders/inbox`)).status, 200);

    sb.admin.injectFault({ kind: '503', match: { method: 'GET' } });
    assert.equal((await call(`/v1.0${user}/mailFolders/inbox`)).status, 503);

    sb.admin.injectFault({ kind: 'malformed' });
    const bad = await call(`/v1.0${user}/mailFolders/inbox/messages`);
    assert.equal(bad.status, 200);
    assert.equal(bad.json, undefined, 'the body is not JSON');

    sb.admin.injectFault({ kind: 'reset' });
    await assert.rejects(call(`/v1.0${user}/mailFolders/inbox`));
    assert.equal((await call(`/v1.0${user}/mailFolders/inbox`)).status, 200, 'the next request is served');
    assert.deepEqual(sb.admin.faults(), { pending: 0, fired: { '429': 2, '503': 1, '500': 0, '502': 0, '504': 0, reset: 1, malformed: 1, truncated: 0, latency: 0 } });
  });

  it('500/502/504 after acting: the change is made and the answer is lost; before: nothing is done; the same inside a $batch', async () => {
    const [a, b, c] = sb.admin.messages(ALICE, 'inbox');
    const importance = (id: string) => sb.admin.messages(ALICE, 'inbox').find((m) => m.id === id)!.importance;
    const patch = (id: string, value: string) => call(`/v1.0${user}/messages/${id}`, { method: 'PATCH', body: { importance: value } });
    sb.admin.injectFault({ kind: '504', match: { method: 'PATCH' } });
    const lost = await patch(a!.id, 'high');
    assert.equal(lost.status, 504);
    assert.equal(lost.json.error.code, 'GatewayTimeout');
    assert.ok(lost.json.error.innerError['request-id'], 'the real error shape');
    assert.equal(importance(a!.id), 'high', 'Graph acted before the answer was lost');
    sb.admin.injectFault({ kind: '502', phase: 'before', match: { method: 'PATCH' } });
    assert.equal((await patch(b!.id, 'low')).status, 502);
    assert.notEqual(importance(b!.id), 'low', 'nothing was done');
    sb.admin.injectFault({ kind: '500', match: { method: 'PATCH', pathContains: c!.id } });
    const r = await batch([{ id: '1', method: 'PATCH', url: `${user}/messages/${c!.id}`, headers: { 'content-type': 'application/json' }, body: { importance: 'low' } }]);
    assert.equal(r.status, 200);
    assert.equal(r.json.responses[0].status, 500);
    assert.equal(r.json.responses[0].body.error.code, 'generalException');
    assert.equal(importance(c!.id), 'low', 'the sub-request was carried out');
  });

  it('a reset after acting, and a body cut off mid-way: the change is made, the client gets no complete answer', async () => {
    const [a, b] = sb.admin.messages(ALICE, 'inbox');
    const isRead = (id: string) => sb.admin.messages(ALICE, 'inbox').find((m) => m.id === id)!.isRead;
    const aRead = isRead(a!.id);
    sb.admin.injectFault({ kind: 'reset', phase: 'after', match: { method: 'PATCH' } });
    await assert.rejects(call(`/v1.0${user}/messages/${a!.id}`, { method: 'PATCH', body: { isRead: !aRead } }));
    assert.equal(isRead(a!.id), !aRead, 'carried out before the connection was dropped');
    const wasRead = isRead(b!.id);
    sb.admin.injectFault({ kind: 'truncated', match: { method: 'PATCH' } });
    await assert.rejects(call(`/v1.0${user}/messages/${b!.id}`, { method: 'PATCH', body: { isRead: !wasRead } }), 'the body ends before its Content-Length');
    assert.equal(isRead(b!.id), !wasRead);
    assert.equal(sb.admin.faults().fired.truncated, 1);
    assert.throws(() => sb.admin.injectFault({ kind: '429', phase: 'after' }), /phase/);
  });

  it('faults are injectable over HTTP too, with a clear error for a bad spec', async () => {
    const admin = (path: string, body?: unknown) => fetch(`${sb.url}/_sandbox${path}`, { method: body ? 'POST' : 'GET', dispatcher: agent, headers: { 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
    const bad = await admin('/inject/fault', { kind: '418' });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as Json).error, /unknown fault kind "418"/);
    assert.equal((await admin('/inject/fault', { kind: '503', times: 3 })).status, 200);
    assert.equal(((await (await admin('/faults')).json()) as Json).pending, 3);
    await admin('/faults/clear', {});
    assert.equal(((await (await admin('/faults')).json()) as Json).pending, 0);
  });
});

describe('sandbox calendar', () => {
  it('calendarView returns events overlapping the window, start/end in the Prefer outlook.timezone zone', async () => {
    sb.admin.addEvent(ALICE, { subject: 'Standup', start: '2026-04-13T07:30:00Z', end: '2026-04-13T07:45:00Z', location: 'Room 1' });
    sb.admin.addEvent(ALICE, { subject: 'Late call', start: '2026-04-13T21:30:00Z', end: '2026-04-13T22:30:00Z' });
    sb.admin.addEvent(ALICE, { subject: 'Tomorrow', start: '2026-04-14T08:00:00+02:00', end: '2026-04-14T09:00:00+02:00' });
    // 13 April in Berlin (UTC+2): 2026-04-12T22:00Z .. 2026-04-13T22:00Z.
    const r = await call(`/v1.0${user}/calendarView?startDateTime=2026-04-13T00:00:00%2B02:00&endDateTime=2026-04-14T00:00:00%2B02:00`, { headers: { prefer: 'outlook.timezone="W. Europe Standard Time"' } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.value.map((e: Json) => e.subject), ['Standup', 'Late call']);
    assert.deepEqual(r.json.value[0].start, { dateTime: '2026-04-13T09:30:00.0000000', timeZone: 'W. Europe Standard Time' });
    assert.equal(r.json.value[0].location.displayName, 'Room 1');
    const utc = await call(`/v1.0${user}/calendarView?startDateTime=2026-04-13T00:00:00&endDateTime=2026-04-14T00:00:00`);
    assert.equal(utc.json.value[0].start.timeZone, 'UTC');
    assert.equal(utc.json.value[0].start.dateTime, '2026-04-13T07:30:00.0000000');
    const missing = await call(`/v1.0${user}/calendarView`);
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error.code, 'ErrorInvalidParameter');
    const settings = await call(`/v1.0${user}/mailboxSettings`);
    assert.equal(settings.json.timeZone, 'W. Europe Standard Time');
  });

  it('a fresh sandbox has a sample working week in each user\'s own time zone, kept two weeks ahead', async () => {
    const events = sb.admin.events(ALICE);
    const ahead = events.filter((e) => Date.parse(e.start) > Date.now() + 12 * 86_400_000);
    assert.ok(ahead.length > 0, 'events about two weeks ahead');
    const standups = events.filter((e) => e.subject === 'Team stand-up');
    assert.ok(standups.length >= 9, `a stand-up every weekday (${standups.length})`);
    const dayOf = (ms: number) => new Intl.DateTimeFormat('en-US', { timeZone: 'Europe/Berlin', weekday: 'short' }).format(ms);
    assert.ok(standups.every((e) => !['Sat', 'Sun'].includes(dayOf(Date.parse(e.start)))), 'none at weekends');
    const local = (ms: number) => new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit' }).format(ms);
    assert.ok(standups.every((e) => local(Date.parse(e.start)) === '09:30'), 'at 09:30 Berlin time, summer and winter');
    const bobs = sb.admin.events('bob@contoso.test').filter((e) => e.subject === 'Team stand-up');
    const la = (ms: number) => new Intl.DateTimeFormat('en-GB', { timeZone: 'America/Los_Angeles', hour: '2-digit', minute: '2-digit' }).format(ms);
    assert.ok(bobs.length > 0 && bobs.every((e) => la(Date.parse(e.start)) === '09:30'), "Bob's are at 09:30 Pacific time");
    const count = events.length;
    const r = await call(`/v1.0${user}/calendarView?startDateTime=2026-04-13T00:00:00Z&endDateTime=2026-04-14T00:00:00Z`);
    assert.equal(r.status, 200);
    assert.equal(sb.admin.events(ALICE).length, count, 'topping up adds nothing for days already filled');
  });
});
