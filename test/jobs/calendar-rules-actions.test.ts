import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CalendarRule } from '../../src/config/calendar-rules-schema.ts';
import { planCalendarActions } from '../../src/jobs/calendar-actions.ts';
import type { EventView } from '../../src/jobs/calendar-match.ts';

const T = Date.UTC(2026, 11, 8, 9, 0);

function view(over: Partial<EventView> = {}): EventView {
  return {
    id: 'E1', type: 'singleInstance', subject: 'All hands', organizer: 'dave@contoso.test', attendees: 20, isOnlineMeeting: true,
    responseRequested: true, myResponse: 'none', isCancelled: false, isAllDay: false, start: T, end: T + 3_600_000, location: '',
    showAs: 'busy', categories: ['Blue'], reminderMinutes: 15, changed: false, conflicts: false, ...over,
  };
}

const rule = (name: string, actions: CalendarRule['actions'], over: Partial<CalendarRule> = {}): CalendarRule => ({ name, match: { attendeesMoreThan: 15 }, actions, stop: false, occurrences: 'master', ...over });
const summary = (rules: CalendarRule[], v: EventView) => planCalendarActions(rules, v).map((p) => `${p.rule}:${p.action}:${JSON.stringify(p.value)}@${p.targetId}`);
const accept = { respond: { response: 'accept' as const, sendResponse: true } };
const tentative = { respond: { response: 'tentative' as const, sendResponse: true } };

describe('calendar rules: one test per action', () => {
  test('respond: planned for an unanswered invitation, once, never over an answer, never to one\'s own or a cancelled event', () => {
    assert.deepEqual(summary([rule('big', [tentative])], view()), ['big:respond:{"response":"tentative","sendResponse":true}@E1']);
    assert.deepEqual(summary([rule('a', [tentative]), rule('b', [accept])], view()), ['a:respond:{"response":"tentative","sendResponse":true}@E1'], 'the first answer wins');
    for (const myResponse of ['accepted', 'tentative', 'declined', 'organizer'] as const) {
      assert.deepEqual(summary([rule('big', [accept])], view({ myResponse })), [], myResponse);
    }
    assert.deepEqual(summary([rule('big', [accept])], view({ isCancelled: true })), []);
  });

  test('respond on a series goes to the master, or to the occurrence with occurrences: each', () => {
    const occurrence = view({ id: 'OCC1', type: 'occurrence', seriesMasterId: 'MASTER' });
    assert.deepEqual(summary([rule('big', [accept])], occurrence), ['big:respond:{"response":"accept","sendResponse":true}@MASTER']);
    assert.deepEqual(summary([rule('big', [accept], { occurrences: 'each' })], occurrence), ['big:respond:{"response":"accept","sendResponse":true}@OCC1']);
  });

  test('categorize: only categories the event lacks (case-insensitive), once', () => {
    assert.deepEqual(summary([rule('c', [{ categorize: ['blue', 'Large meeting'] }]), rule('d', [{ categorize: ['large MEETING'] }])], view()), ['c:categorize:["Large meeting"]@E1']);
    assert.deepEqual(summary([rule('c', [{ categorize: ['Blue'] }])], view()), []);
  });

  test('showAs and reminderMinutes: left out when already so', () => {
    assert.deepEqual(summary([rule('s', [{ showAs: 'tentative' }, { reminderMinutes: 30 }])], view()), ['s:showAs:"tentative"@E1', 's:reminderMinutes:30@E1']);
    assert.deepEqual(summary([rule('s', [{ showAs: 'busy' }, { reminderMinutes: 15 }])], view()), []);
  });

  test('webhook and notify: once per event per plan', () => {
    assert.deepEqual(
      summary([rule('w', [{ webhook: 'https://hooks.example/a' }, { notify: true }]), rule('x', [{ webhook: 'https://hooks.example/a' }, { webhook: 'https://hooks.example/b' }, { notify: 'again' }])], view()),
      ['w:webhook:"https://hooks.example/a"@E1', 'w:notify:true@E1', 'x:webhook:"https://hooks.example/b"@E1'],
    );
  });

  test('rules apply in order until a matching rule with stop; a rule that does not match does nothing', () => {
    const rules = [
      rule('skip', [accept], { match: { organizer: 'someone@else.test' } }),
      rule('first', [{ categorize: ['X'] }], { stop: true }),
      rule('never', [tentative]),
    ];
    assert.deepEqual(summary(rules, view()), ['first:categorize:["X"]@E1']);
    const [planned] = planCalendarActions(rules, view());
    assert.deepEqual(planned!.why, ['attendeesMoreThan=15']);
  });
});
