import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requiredPermissions, signInScopes } from '../../src/auth/permissions.ts';
import type { CalendarRulesJob } from '../../src/config/calendar-rules-schema.ts';
import { JobsFileError, parseJobsFile, type JobsFileProblem } from '../../src/config/jobs-file.ts';

/** One calendar-rules job around the given rules block (rules start on line 6). */
function withRules(rules: string, extra = ''): string {
  return `jobs:\n  - name: meetings\n    type: calendar-rules\n    schedule: "*/10 * * * *"\n${extra}    rules:\n${rules}`;
}

function problemsOf(text: string): JobsFileProblem[] {
  try {
    parseJobsFile(text, 'agent.config.yaml');
  } catch (error) {
    assert.ok(error instanceof JobsFileError, String(error));
    return error.problems;
  }
  assert.fail('expected the file to be refused');
}

function assertOneProblem(text: string, key: string, line: number, message: RegExp): void {
  const problems = problemsOf(text);
  assert.equal(problems.length, 1, problems.map((p) => `${p.line} ${p.key}: ${p.message}`).join('\n'));
  assert.equal(problems[0]!.key, key);
  assert.equal(problems[0]!.line, line);
  assert.match(problems[0]!.message, message);
  assert.match(problems[0]!.message, /Fix: /);
}

describe('jobs file: type calendar-rules', () => {
  it('reads a valid job with every key and action, with defaults', () => {
    const file = parseJobsFile(withRules(`      - name: one-on-ones
        match: { organizer: boss@example.com, subjectContains: "1:1", myResponse: none }
        actions: [ { respond: accept } ]
      - name: late
        match: { any: [ { outsideWorkingHours: true }, { conflicts: true } ], isRecurring: false, changed: false, responseRequested: true }
        actions: [ { respond: { response: decline, comment: "Away", sendResponse: false } }, { showAs: free }, { reminderMinutes: 0 } ]
        occurrences: each
        stop: true
      - name: big
        match: { attendeesMoreThan: 15, organizerDomain: example.com, isOnlineMeeting: true, subjectMatches: "^all" }
        actions: [ { categorize: [Large] }, { webhook: "https://hooks.example.com/c" }, { notify: true }, { notify: moved } ]
`, '    window: 14d\n    workingHours: { start: "08:30", end: "17:00", days: [monday, friday] }\n'), 'agent.config.yaml');
    const job = file.jobs[0] as CalendarRulesJob;
    assert.equal(job.type, 'calendar-rules');
    assert.equal(job.windowDays, 14);
    assert.deepEqual(job.workingHours, { start: '08:30', end: '17:00', days: ['monday', 'friday'] });
    assert.deepEqual(job.rules[0]!.actions, [{ respond: { response: 'accept', sendResponse: true } }]);
    assert.equal(job.rules[0]!.occurrences, 'master');
    assert.deepEqual(job.rules[1]!.actions[0], { respond: { response: 'decline', sendResponse: false, comment: 'Away' } });
    assert.equal(job.rules[1]!.occurrences, 'each');
    assert.equal(job.rules[1]!.stop, true);
    assert.deepEqual(job.rules[2]!.actions.slice(2), [{ notify: true }, { notify: 'moved' }]);
    const defaults = parseJobsFile(withRules('      - name: x\n        match: { myResponse: none }\n        actions: [ { respond: tentative } ]\n'), 'a.yaml').jobs[0] as CalendarRulesJob;
    assert.equal(defaults.windowDays, 30);
    assert.equal(defaults.workingHours, undefined);
  });

  it('names the line, the key and the fix for each bad value', () => {
    const rule = (match: string, actions = '[ { respond: accept } ]') => withRules(`      - name: r\n        match: ${match}\n        actions: ${actions}\n`);
    assertOneProblem(rule('{ organiser: a@b.com }'), 'jobs[0].rules[0].match.organiser', 7, /did you mean "organizer"/);
    assertOneProblem(rule('{ from: a@b.com }'), 'jobs[0].rules[0].match.from', 7, /write organizer:/);
    assertOneProblem(rule('{ organizer: example.com }'), 'jobs[0].rules[0].match.organizer', 7, /organizerDomain: example.com/);
    assertOneProblem(rule('{ organizerDomain: a@example.com }'), 'jobs[0].rules[0].match.organizerDomain', 7, /organizerDomain: example.com/);
    assertOneProblem(rule('{ subjectMatches: "(" }'), 'jobs[0].rules[0].match.subjectMatches', 7, /invalid regular expression/);
    assertOneProblem(rule('{ attendeesMoreThan: many }'), 'jobs[0].rules[0].match.attendeesMoreThan', 7, /whole number/);
    assertOneProblem(rule('{ myResponse: acepted }'), 'jobs[0].rules[0].match.myResponse', 7, /did you mean "accepted"/);
    assertOneProblem(rule('{ conflicts: yes please }'), 'jobs[0].rules[0].match.conflicts', 7, /true or false/);
    assertOneProblem(rule('{}'), 'jobs[0].rules[0].match', 7, /every event/);
    assertOneProblem(rule('{ myResponse: none }', '[ { respond: maybe } ]'), 'jobs[0].rules[0].actions[0].respond', 8, /accept, tentative or decline/);
    assertOneProblem(rule('{ myResponse: none }', '[ { respond: tentativelyAccept } ]'), 'jobs[0].rules[0].actions[0].respond', 8, /did you mean "tentative"/);
    assertOneProblem(rule('{ myResponse: none }', '[ { respond: { response: accept, sendResponse: sure } } ]'), 'jobs[0].rules[0].actions[0].respond.sendResponse', 8, /true or false/);
    assertOneProblem(rule('{ myResponse: none }', '[ { respond: accept }, { respond: decline } ]'), 'jobs[0].rules[0].actions[1]', 8, /answers the invitation twice/);
    assertOneProblem(rule('{ myResponse: none }', '[ { showAs: away } ]'), 'jobs[0].rules[0].actions[0].showAs', 8, /showAs must be one of/);
    assertOneProblem(rule('{ myResponse: none }', '[ { reminderMinutes: -5 } ]'), 'jobs[0].rules[0].actions[0].reminderMinutes', 8, /whole number of minutes/);
    assertOneProblem(rule('{ myResponse: none }', '[ { webhook: "ftp://x" } ]'), 'jobs[0].rules[0].actions[0].webhook', 8, /http\(s\) URL/);
    assertOneProblem(rule('{ myResponse: none }', '[ { notify: false } ]'), 'jobs[0].rules[0].actions[0].notify', 8, /NOTIFY_URL/);
    assertOneProblem(rule('{ myResponse: none }', '[ { moveTo: Archive } ]'), 'jobs[0].rules[0].actions[0].moveTo', 8, /unknown action "moveTo" for a calendar rule/);
    assertOneProblem(rule('{ myResponse: none }', '[ { respond: accept, categorize: [X] } ]'), 'jobs[0].rules[0].actions[0]', 8, /exactly one key/);
    assertOneProblem(withRules('      - name: r\n        match: { myResponse: none }\n        actions: [ { respond: accept } ]\n        occurrences: all\n'), 'jobs[0].rules[0].occurrences', 9, /each or master/);
    assertOneProblem(withRules('      - name: r\n        match: { myResponse: none }\n        actions: [ { respond: accept } ]\n', '    window: 30\n'), 'jobs[0].window', 5, /written like 30d/);
    assertOneProblem(withRules('      - name: r\n        match: { myResponse: none }\n        actions: [ { respond: accept } ]\n', '    workingHours: { start: "8", end: "18:00" }\n'), 'jobs[0].workingHours.start', 5, /"HH:MM"/);
    assertOneProblem(withRules('      - name: r\n        match: { myResponse: none }\n        actions: [ { respond: accept } ]\n', '    folder: inbox\n'), 'jobs[0].folder', 5, /only for inbox-rules jobs/);
  });

  it('lists every problem of a bad file at once', () => {
    const problems = problemsOf(withRules('      - name: r\n        match: { organiser: a@b.com, attendeesMoreThan: -1 }\n        actions: [ { respond: maybe }, { showAs: away } ]\n'));
    assert.deepEqual(problems.map((p) => p.key).sort(), [
      'jobs[0].rules[0].actions[0].respond', 'jobs[0].rules[0].actions[1].showAs', 'jobs[0].rules[0].match.attendeesMoreThan', 'jobs[0].rules[0].match.organiser',
    ]);
  });
});

describe('permissions for calendar rules (least privilege)', () => {
  const jobs = (actions: string, match = '{ myResponse: none }', extra = '') => parseJobsFile(`timezone: Europe/Berlin\n${withRules(`      - name: r\n        match: ${match}\n        actions: ${actions}\n`, extra)}`, 'a.yaml');

  it('Calendars.Read to follow the calendar; Calendars.ReadWrite only when a rule answers or changes events', () => {
    assert.deepEqual(requiredPermissions(jobs('[ { webhook: "https://h.example/x" }, { notify: true } ]')).application, ['Calendars.Read']);
    for (const action of ['{ respond: accept }', '{ categorize: [X] }', '{ showAs: free }', '{ reminderMinutes: 5 }']) {
      const need = requiredPermissions(jobs(`[ ${action} ]`));
      assert.deepEqual(need.application, ['Calendars.ReadWrite'], action);
      assert.match(need.needs[0]!.because.join(' '), /answers or changes events/);
    }
  });

  it('MailboxSettings.Read for outsideWorkingHours unless the job gives hours and the file a timezone', () => {
    assert.deepEqual(requiredPermissions(jobs('[ { respond: decline } ]', '{ outsideWorkingHours: true }')).application, ['Calendars.ReadWrite', 'MailboxSettings.Read']);
    assert.deepEqual(requiredPermissions(jobs('[ { respond: decline } ]', '{ outsideWorkingHours: true }', '    workingHours: { start: "08:00", end: "18:00" }\n')).application, ['Calendars.ReadWrite']);
  });

  it('the delegated sign-in asks for Calendars.ReadWrite only when a rule writes', () => {
    const base = ['openid', 'Calendars.Read'];
    assert.deepEqual(signInScopes(jobs('[ { notify: true } ]'), base), base);
    assert.deepEqual(signInScopes(jobs('[ { respond: accept } ]'), base), [...base, 'Calendars.ReadWrite']);
  });
});
