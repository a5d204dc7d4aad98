import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { explainMatch, isOutsideWorkingHours, matchesEvent, myResponseOf, usesKey, type EventView } from '../../src/jobs/calendar-match.ts';
import { viewOf } from '../../src/jobs/calendar-rules.ts';
import type { GraphEvent } from '../../src/graph/calendar.ts';
import { eventInstant } from '../../src/graph/calendar.ts';

const T = Date.UTC(2026, 11, 8, 9, 0); // Tuesday 8 December 2026, 10:00 in Berlin

function view(over: Partial<EventView> = {}): EventView {
  return {
    id: 'E1', type: 'singleInstance', subject: '1:1 Alice / Bob', organizer: 'Bob@Contoso.test', attendees: 2, isOnlineMeeting: false,
    responseRequested: true, myResponse: 'none', isCancelled: false, isAllDay: false, start: T, end: T + 1_800_000, location: 'Room 1',
    showAs: 'busy', categories: [], reminderMinutes: 15, changed: false, conflicts: false, ...over,
  };
}

describe('calendar rules: one test per match key', () => {
  test('organizer: whole address, case-insensitive, a list is any of', () => {
    assert.equal(matchesEvent({ organizer: 'bob@contoso.TEST' }, view()), true);
    assert.equal(matchesEvent({ organizer: ['x@contoso.test', 'bob@contoso.test'] }, view()), true);
    assert.equal(matchesEvent({ organizer: 'bo@contoso.test' }, view()), false);
    assert.equal(matchesEvent({ organizer: 'bob@contoso.test' }, view({ organizer: undefined })), false);
  });

  test('organizerDomain: the domain and its subdomains, not look-alikes', () => {
    assert.equal(matchesEvent({ organizerDomain: 'contoso.test' }, view()), true);
    assert.equal(matchesEvent({ organizerDomain: 'contoso.test' }, view({ organizer: 'a@mail.contoso.test' })), true);
    assert.equal(matchesEvent({ organizerDomain: 'contoso.test' }, view({ organizer: 'a@evilcontoso.test' })), false);
  });

  test('subjectContains and subjectMatches: case-insensitive', () => {
    assert.equal(matchesEvent({ subjectContains: '1:1' }, view()), true);
    assert.equal(matchesEvent({ subjectContains: 'ALICE' }, view()), true);
    assert.equal(matchesEvent({ subjectContains: 'standup' }, view()), false);
    assert.equal(matchesEvent({ subjectMatches: '^1:1\\b' }, view()), true);
    assert.equal(matchesEvent({ subjectMatches: 'alice / bob$' }, view()), true);
    assert.equal(matchesEvent({ subjectMatches: '^Bob' }, view()), false);
  });

  test('attendeesMoreThan: strictly more', () => {
    assert.equal(matchesEvent({ attendeesMoreThan: 15 }, view({ attendees: 16 })), true);
    assert.equal(matchesEvent({ attendeesMoreThan: 15 }, view({ attendees: 15 })), false);
  });

  test('isOnlineMeeting, responseRequested, isRecurring', () => {
    assert.equal(matchesEvent({ isOnlineMeeting: true }, view({ isOnlineMeeting: true })), true);
    assert.equal(matchesEvent({ isOnlineMeeting: true }, view()), false);
    assert.equal(matchesEvent({ responseRequested: false }, view({ responseRequested: false })), true);
    assert.equal(matchesEvent({ responseRequested: false }, view()), false);
    assert.equal(matchesEvent({ isRecurring: true }, view({ type: 'occurrence', seriesMasterId: 'M' })), true);
    assert.equal(matchesEvent({ isRecurring: true }, view({ type: 'exception', seriesMasterId: 'M' })), true);
    assert.equal(matchesEvent({ isRecurring: false }, view()), true);
  });

  test('myResponse: none/accepted/tentative/declined/organizer from Graph responseStatus', () => {
    assert.equal(myResponseOf('notResponded'), 'none');
    assert.equal(myResponseOf('none'), 'none');
    assert.equal(myResponseOf('tentativelyAccepted'), 'tentative');
    assert.equal(myResponseOf('accepted'), 'accepted');
    assert.equal(myResponseOf('declined'), 'declined');
    assert.equal(myResponseOf('organizer'), 'organizer');
    assert.equal(matchesEvent({ myResponse: 'none' }, view()), true);
    assert.equal(matchesEvent({ myResponse: ['accepted', 'tentative'] }, view({ myResponse: 'tentative' })), true);
    assert.equal(matchesEvent({ myResponse: 'none' }, view({ myResponse: 'declined' })), false);
  });

  test('outsideWorkingHours: local times in the working hours zone, end exclusive, days', () => {
    const hours = { days: ['monday', 'tuesday', 'wednesday', 'thursday', 'friday'], start: '08:00', end: '18:00' };
    const berlin = (h: number, m = 0) => Date.UTC(2026, 11, 8, h - 1, m); // CET = UTC+1 in December
    const at = (from: number, to: number) => isOutsideWorkingHours({ start: from, end: to, isAllDay: false }, hours, 'Europe/Berlin');
    assert.equal(at(berlin(10), berlin(11)), false);
    assert.equal(at(berlin(17), berlin(18)), false, 'ending at 18:00 sharp is inside');
    assert.equal(at(berlin(17, 30), berlin(18, 30)), true);
    assert.equal(at(berlin(19), berlin(20)), true);
    assert.equal(at(berlin(7, 30), berlin(8, 30)), true);
    assert.equal(isOutsideWorkingHours({ start: Date.UTC(2026, 11, 12, 9), end: Date.UTC(2026, 11, 12, 10), isAllDay: false }, hours, 'Europe/Berlin'), true, 'a Saturday');
    assert.equal(isOutsideWorkingHours({ start: Date.UTC(2026, 11, 8, 3), end: Date.UTC(2026, 11, 8, 4), isAllDay: false }, hours, 'America/New_York'), true, '22:00 the day before in New York');
    assert.equal(isOutsideWorkingHours({ start: Date.UTC(2026, 11, 7, 23), end: Date.UTC(2026, 11, 8, 23), isAllDay: true }, hours, 'Europe/Berlin'), false, 'an all-day event on a working day');
    assert.equal(matchesEvent({ outsideWorkingHours: true }, view({ outsideWorkingHours: true })), true);
    assert.throws(() => matchesEvent({ outsideWorkingHours: true }, view()), /outsideWorkingHours was not computed/);
  });

  test('conflicts: overlaps another event shown busy or away, not cancelled, not declined', () => {
    const graph = (id: string, from: number, to: number, over: Partial<GraphEvent> = {}): GraphEvent => ({
      id, subject: id, start: { dateTime: new Date(from).toISOString().slice(0, 19), timeZone: 'UTC' }, end: { dateTime: new Date(to).toISOString().slice(0, 19), timeZone: 'UTC' },
      showAs: 'busy', responseStatus: { response: 'accepted' }, ...over,
    });
    const entry = (e: GraphEvent) => ({ s: eventInstant(e.start), e: eventInstant(e.end), l: '', b: (e.showAs === 'busy' || e.showAs === 'oof') && !e.isCancelled && e.responseStatus?.response !== 'declined' });
    const mine = graph('A', T, T + 3_600_000);
    const index = (...others: GraphEvent[]) => Object.fromEntries([mine, ...others].map((e) => [e.id, entry(e)]));
    assert.equal(viewOf(mine, {}, index(graph('B', T + 1_800_000, T + 5_400_000))).conflicts, true);
    assert.equal(viewOf(mine, {}, index(graph('B', T + 3_600_000, T + 5_400_000))).conflicts, false, 'back to back is no conflict');
    assert.equal(viewOf(mine, {}, index(graph('B', T, T + 600_000, { showAs: 'free' }))).conflicts, false);
    assert.equal(viewOf(mine, {}, index(graph('B', T, T + 600_000, { showAs: 'oof' }))).conflicts, true);
    assert.equal(viewOf(mine, {}, index(graph('B', T, T + 600_000, { isCancelled: true }))).conflicts, false);
    assert.equal(viewOf(mine, {}, index(graph('B', T, T + 600_000, { responseStatus: { response: 'declined' } }))).conflicts, false);
    assert.equal(viewOf(mine, {}, index()).conflicts, false, 'never with itself');
  });

  test('changed: start, end or location differ from when last seen; never on first sight', () => {
    const e: GraphEvent = { id: 'A', start: { dateTime: '2026-12-08T09:00:00.0000000', timeZone: 'UTC' }, end: { dateTime: '2026-12-08T10:00:00.0000000', timeZone: 'UTC' }, location: { displayName: 'Room 1' } };
    const seen = { s: Date.UTC(2026, 11, 8, 9), e: Date.UTC(2026, 11, 8, 10), l: 'Room 1', b: true };
    assert.equal(viewOf(e, {}, {}).changed, false);
    assert.equal(viewOf(e, { A: seen }, {}).changed, false);
    assert.equal(viewOf(e, { A: { ...seen, s: seen.s - 3_600_000 } }, {}).changed, true);
    assert.equal(viewOf(e, { A: { ...seen, e: seen.e + 60_000 } }, {}).changed, true);
    assert.equal(viewOf(e, { A: { ...seen, l: 'Room 2' } }, {}).changed, true);
    assert.equal(matchesEvent({ changed: true }, view({ changed: true })), true);
    assert.equal(matchesEvent({ changed: true }, view()), false);
  });

  test('explainMatch names the keys that held, any: included; every key must hold', () => {
    assert.deepEqual(explainMatch({ organizer: 'bob@contoso.test', subjectContains: '1:1' }, view()), ['organizer=bob@contoso.test', 'subjectContains=1:1']);
    assert.deepEqual(explainMatch({ any: [{ attendeesMoreThan: 10 }, { myResponse: 'none' }] }, view()), ['any[1].myResponse=none']);
    assert.equal(explainMatch({ organizer: 'bob@contoso.test', attendeesMoreThan: 5 }, view()), undefined);
    assert.equal(usesKey([{ any: [{ outsideWorkingHours: true }] }], 'outsideWorkingHours'), true);
    assert.equal(usesKey([{ organizer: 'a@b.c' }], 'outsideWorkingHours'), false);
  });

  test('eventInstant reads dateTime in its time zone (UTC by default, Windows names too)', () => {
    assert.equal(eventInstant({ dateTime: '2026-12-08T09:00:00.0000000', timeZone: 'UTC' }), Date.UTC(2026, 11, 8, 9));
    assert.equal(eventInstant({ dateTime: '2026-12-08T10:00:00.0000000', timeZone: 'W. Europe Standard Time' }), Date.UTC(2026, 11, 8, 9));
    assert.equal(eventInstant({ dateTime: '2026-07-08T10:00:00.0000000', timeZone: 'Europe/Berlin' }), Date.UTC(2026, 6, 8, 8));
  });
});
