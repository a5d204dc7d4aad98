import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AgentError } from '../../src/config/errors.ts';
import { JobsFileError, loadJobsFile, parseJobsFile, suggest } from '../../src/config/jobs-file.ts';
import type { InboxRulesJob, JobsFileProblem } from '../../src/config/jobs-file.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.join(here, '..', 'fixtures', 'jobs');
const repoRoot = path.join(here, '..', '..');

function problemsOf(text: string, file = 'agent.config.yaml'): JobsFileProblem[] {
  try {
    parseJobsFile(text, file);
  } catch (error) {
    assert.ok(error instanceof JobsFileError, `expected JobsFileError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail('expected the file to be refused');
}

/** Exactly one problem, at this key and line, whose message matches. */
function assertOneProblem(text: string, key: string, line: number | undefined, message: RegExp, file?: string): JobsFileProblem {
  const problems = problemsOf(text, file);
  assert.equal(problems.length, 1, `expected one problem, got:\n${problems.map((p) => `${p.line} ${p.key}: ${p.message}`).join('\n')}`);
  const [p] = problems;
  assert.equal(p!.key, key);
  assert.equal(p!.line, line);
  assert.match(p!.message, message);
  assert.match(p!.message, /Fix: /);
  return p!;
}

/** One inbox-rules job around the given rules block (rules start on line 6). */
function withRules(rules: string): string {
  return `jobs:\n  - name: triage\n    type: inbox-rules\n    schedule: "*/5 * * * *"\n    rules:\n${rules}`;
}

describe('parseJobsFile: valid files', () => {
  it('reads the full example with its defaults', async () => {
    const file = await loadJobsFile(path.join(fixtures, 'valid.yaml'));
    assert.equal(file.path, path.join(fixtures, 'valid.yaml'));
    assert.equal(file.timezone, 'Europe/Berlin');
    assert.deepEqual(file.jobs.map((j) => [j.name, j.type]), [
      ['triage', 'inbox-rules'],
      ['agenda', 'agenda-digest'],
      ['custom', 'custom'],
    ]);
    const triage = file.jobs[0] as InboxRulesJob;
    assert.equal(triage.folder, 'inbox');
    assert.equal(triage.backfill, false);
    assert.deepEqual(triage.rules[0], {
      name: 'newsletters',
      match: { fromDomain: 'news.example.com' },
      actions: [{ moveTo: 'Newsletters' }, { markRead: true }],
      stop: false,
    });
    assert.equal(triage.rules[1]!.stop, true);
    const everything = triage.rules[2]!;
    assert.deepEqual(everything.match, {
      from: ['boss@example.com', 'ceo@example.com'],
      to: 'me@example.com',
      cc: ['team@example.com'],
      subjectMatches: '^re: .*\\d+$',
      bodyContains: 'quarterly report',
      hasAttachments: true,
      importance: ['high', 'normal'],
      isRead: false,
      categories: 'Red',
      olderThanDays: 3,
      any: [{ subjectContains: ['invoice', 'receipt'] }, { fromDomain: ['billing.example.com'] }],
    });
    assert.deepEqual(everything.actions, [
      { copyTo: 'Finance/Invoices' },
      { setImportance: 'low' },
      { forwardTo: ['assistant@example.com'] },
      { webhook: 'https://hooks.example.com/mail' },
      { categorize: ['Finance'] }, // a single category is normalized to a list
      { delete: true },
    ]);
    assert.deepEqual(file.jobs[1], { name: 'agenda', type: 'agenda-digest', schedule: '0 7 * * 1-5', sendTo: 'me' });
    assert.deepEqual(file.jobs[2], {
      name: 'custom',
      type: 'custom',
      module: path.join(fixtures, 'jobs', 'my-job.js'),
      schedule: '0 * * * *',
      options: { greeting: 'hello' },
    });
  });

  it('keeps exactly the match keys that were written', () => {
    const file = parseJobsFile(withRules('      - name: a\n        match: { from: A@Example.com, olderThanDays: 0 }\n        actions: [ { flag: true } ]\n'), 'x.yaml');
    assert.deepEqual((file.jobs[0] as InboxRulesJob).rules[0]!.match, { from: 'A@Example.com', olderThanDays: 0 });
  });

  it('defaults folder to inbox, backfill and stop to false', () => {
    const file = parseJobsFile(withRules('      - name: a\n        match: { isRead: true }\n        actions: [ { flag: true } ]\n'), 'x.yaml');
    const job = file.jobs[0] as InboxRulesJob;
    assert.deepEqual([job.folder, job.backfill, job.rules[0]!.stop], ['inbox', false, false]);
  });

  it('reads the JSON variant the same way', async () => {
    const json = await loadJobsFile(path.join(fixtures, 'valid.json'));
    const yaml = await loadJobsFile(path.join(fixtures, 'valid.yaml'));
    assert.equal(json.timezone, 'Europe/Berlin');
    assert.deepEqual((json.jobs[0] as InboxRulesJob).rules, (yaml.jobs[0] as InboxRulesJob).rules.slice(0, 2));
    assert.deepEqual(json.jobs[1], yaml.jobs[1]);
    assert.equal(json.jobs[2]!.type, 'custom');
  });

  it('accepts the shipped agent.config.yaml', async () => {
    const file = await loadJobsFile(path.join(repoRoot, 'agent.config.yaml'));
    assert.deepEqual(file.jobs.map((j) => [j.name, j.type]), [['triage', 'inbox-rules'], ['agenda', 'agenda-digest']]);
    const triage = file.jobs[0] as InboxRulesJob;
    assert.equal(triage.name, 'triage');
    assert.equal(triage.backfill, true);
    assert.deepEqual(triage.rules.map((r) => [r.name, r.stop]), [
      ['newsletters', false],
      ['invoices', false],
      ['urgent', true],
    ]);
  });

  it('resolves module against the jobs file folder and makes it a custom job', () => {
    const file = parseJobsFile('jobs:\n  - name: mine\n    module: ./jobs/a.js\n    schedule: "0 * * * *"\n', '/srv/agent/agent.config.yaml');
    assert.deepEqual(file.jobs[0], { name: 'mine', type: 'custom', module: '/srv/agent/jobs/a.js', schedule: '0 * * * *' });
    const explicit = parseJobsFile('jobs:\n  - name: mine\n    type: custom\n    module: ../b.js\n    schedule: "0 * * * *"\n', '/srv/agent/agent.config.yaml');
    assert.equal(explicit.jobs[0]!.type === 'custom' && explicit.jobs[0]!.module, '/srv/b.js');
  });

  it('accepts 6-field cron, canonicalizes the time zone, allows an empty jobs list', () => {
    const file = parseJobsFile('timezone: europe/berlin\njobs:\n  - name: a\n    type: agenda-digest\n    schedule: "*/30 * * * * *"\n    sendTo: boss@example.com\n', 'a.yml');
    assert.equal(file.timezone, 'Europe/Berlin');
    assert.deepEqual(file.jobs[0], { name: 'a', type: 'agenda-digest', schedule: '*/30 * * * * *', sendTo: 'boss@example.com' });
    assert.deepEqual(parseJobsFile('jobs: []\n', 'a.yaml').jobs, []);
    assert.equal(parseJobsFile('jobs: []\n', 'a.yaml').timezone, undefined);
  });

  it('lets the same rule name appear in two jobs', () => {
    const rule = '    rules:\n      - name: same\n        match: { isRead: true }\n        actions: [ { flag: true } ]\n';
    const text = `jobs:\n  - name: a\n    type: inbox-rules\n    schedule: "0 * * * *"\n${rule}  - name: b\n    type: inbox-rules\n    schedule: "0 * * * *"\n${rule}`;
    assert.equal(parseJobsFile(text, 'x.yaml').jobs.length, 2);
  });

  it('tolerates a byte order mark', () => {
    assert.deepEqual(parseJobsFile('\uFEFFjobs: []\n', 'x.yaml').jobs, []);
  });
});

describe('parseJobsFile: every problem at once, with line and key', () => {
  it('lists all problems of the YAML fixture in line order', async () => {
    const file = path.join(fixtures, 'many-problems.yaml');
    const error = await loadJobsFile(file).then(
      () => assert.fail('accepted'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof JobsFileError);
    assert.ok(error instanceof AgentError);
    assert.equal(error.code, 'JOBS_FILE_INVALID');
    assert.deepEqual(
      error.problems.map((p) => [p.line, p.key]),
      [
        [1, 'timezone'],
        [5, 'jobs[0].schedule'],
        [8, 'jobs[0].rules[0].match.subjectContain'],
        [10, 'jobs[0].rules[1].name'],
        [11, 'jobs[0].rules[1].match.subjectMatches'],
        [12, 'jobs[0].rules[1].actions[0].archive'],
        [14, 'jobs[0].rules[2].match'],
        [18, 'jobs[0].rules[3].actions[0].moveTo'],
        [18, 'jobs[0].rules[3].actions[1]'],
        [18, 'jobs[0].rules[3].actions[2]'],
        [19, 'jobs[1].name'],
        [22, 'jobs[2]'],
      ],
    );
    const byKey = new Map(error.problems.map((p) => [p.key, p.message]));
    assert.match(byKey.get('timezone')!, /unknown time zone "Mars\/Olympus_Mons".*IANA/);
    assert.match(byKey.get('jobs[0].schedule')!, /not a valid cron expression \(expected 5 or 6 fields but got 4\)/);
    assert.match(byKey.get('jobs[0].rules[0].match.subjectContain')!, /did you mean "subjectContains"\?/);
    assert.match(byKey.get('jobs[0].rules[1].name')!, /duplicate rule name "news".*line 7/);
    assert.match(byKey.get('jobs[0].rules[1].match.subjectMatches')!, /invalid regular expression \(.*Unterminated group/);
    assert.match(byKey.get('jobs[0].rules[1].actions[0].archive')!, /unknown action "archive".*moveTo: archive/);
    assert.match(byKey.get('jobs[0].rules[2].match')!, /match every message.*olderThanDays: 0/);
    assert.match(byKey.get('jobs[0].rules[3].actions[0].moveTo')!, /empty level/);
    assert.match(byKey.get('jobs[0].rules[3].actions[1]')!, /may not both moveTo and delete/);
    assert.match(byKey.get('jobs[0].rules[3].actions[2]')!, /exactly one key.*markRead, flag/);
    assert.match(byKey.get('jobs[1].name')!, /duplicate job name "triage".*line 3/);
    assert.match(byKey.get('jobs[2]')!, /neither type nor module/);
    for (const p of error.problems) assert.match(p.message, /Fix: /, p.key);

    const lines = error.message.split('\n');
    assert.match(lines[0]!, /many-problems\.yaml is invalid \(12 problems\)/);
    assert.equal(lines.length, 13);
    assert.ok(lines.includes(`  ${file}:11 jobs[0].rules[1].match.subjectMatches: ${byKey.get('jobs[0].rules[1].match.subjectMatches')}`));
  });

  it('gives line numbers for JSON files too', async () => {
    const error = await loadJobsFile(path.join(fixtures, 'many-problems.json')).catch((e: unknown) => e);
    assert.ok(error instanceof JobsFileError);
    assert.deepEqual(
      error.problems.map((p) => [p.line, p.key]),
      [
        [5, 'jobs[0].type'],
        [15, 'jobs[1].rules[0].match.importance'],
        [16, 'jobs[1].rules[0].actions[0].flag'],
        [17, 'jobs[1].rules[0].stpo'],
      ],
    );
    assert.match(error.problems[0]!.message, /did you mean "inbox-rules"\?/);
    assert.match(error.problems[3]!.message, /did you mean "stop"\?/);
  });

  it('reports a JSON syntax error with its line', async () => {
    const error = await loadJobsFile(path.join(fixtures, 'broken.json')).catch((e: unknown) => e);
    assert.ok(error instanceof JobsFileError);
    assert.equal(error.problems.length, 1);
    assert.equal(error.problems[0]!.line, 3);
    assert.match(error.problems[0]!.message, /not valid JSON/);
  });

  it('reports a duplicate key in JSON, which JSON.parse would hide', () => {
    assertOneProblem('{\n  "jobs": [],\n  "jobs": []\n}\n', '', 3, /twice/, 'agent.config.json');
  });

  it('refuses tab indentation with its line', async () => {
    const error = await loadJobsFile(path.join(fixtures, 'tab-indent.yaml')).catch((e: unknown) => e);
    assert.ok(error instanceof JobsFileError);
    assert.deepEqual(error.problems.map((p) => p.line), [2]);
    assert.match(error.problems[0]!.message, /tab.*Fix: replace the tabs/);
  });

  it('explains an unquoted cron schedule (a YAML alias)', async () => {
    const error = await loadJobsFile(path.join(fixtures, 'unquoted-cron.yaml')).catch((e: unknown) => e);
    assert.ok(error instanceof JobsFileError);
    assert.deepEqual(error.problems.map((p) => p.line), [4]);
    assert.match(error.problems[0]!.message, /quote it, e\.g\. schedule: "\*\/5 \* \* \* \*"/);
  });

  it('reports other YAML syntax errors and duplicate keys with their line', () => {
    assertOneProblem('jobs: []\ntimezone: UTC\njobs: []\n', '', 3, /twice/);
    const p = problemsOf('jobs:\n  - name: a\n    rules: [\n  oops\n');
    assert.ok(p.length >= 1);
    assert.ok(p.every((x) => typeof x.line === 'number' && /YAML syntax error/.test(x.message)));
  });

  it('counts problems across several jobs', () => {
    const text = 'jobs:\n  - name: a\n    type: agenda-digest\n    schedule: "61 * * * *"\n  - name: b\n    type: agenda-digest\n    schedule: "0 * * * *"\n    sentTo: me\n';
    const problems = problemsOf(text);
    assert.deepEqual(problems.map((p) => [p.line, p.key]), [
      [4, 'jobs[0].schedule'],
      [8, 'jobs[1].sentTo'],
    ]);
    assert.match(problems[1]!.message, /did you mean "sendTo"\?/);
  });
});

describe('parseJobsFile: each kind of problem', () => {
  it('refuses a missing file, naming the path and how to create one', async () => {
    const missing = path.join(fixtures, 'does-not-exist.yaml');
    const error = await loadJobsFile(missing).catch((e: unknown) => e);
    assert.ok(error instanceof JobsFileError);
    assert.match(error.message, /does-not-exist\.yaml/);
    assert.match(error.problems[0]!.message, /does not exist.*create it.*AGENT_CONFIG/);
  });

  it('refuses a custom job whose module is missing (loadJobsFile only)', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(path.join(tmpdir(), 'jobs-file-'));
    const file = path.join(dir, 'agent.config.yaml');
    await writeFile(file, 'jobs:\n  - name: mine\n    schedule: "0 * * * *"\n    module: ./nope.js\n  - name: other\n    type: agenda-digest\n    schedule: "0 25 * * *"\n');
    const error = await loadJobsFile(file).catch((e: unknown) => e);
    assert.ok(error instanceof JobsFileError);
    assert.deepEqual(error.problems.map((p) => [p.line, p.key]), [
      [4, 'jobs[0].module'],
      [7, 'jobs[1].schedule'],
    ]);
    assert.match(error.problems[0]!.message, /nope\.js does not exist/);
  });

  it('refuses an unsupported extension, an empty file, a non-mapping and a missing jobs list', () => {
    assertOneProblem('jobs: []', '', undefined, /unsupported file type ".toml"/, 'agent.config.toml');
    assertOneProblem('', '', undefined, /file is empty/);
    assertOneProblem('- a\n- b\n', '', 1, /must be a mapping with a jobs: list/);
    assertOneProblem('timezone: UTC\n', '', 1, /no jobs: list/);
    assertOneProblem('jobs: triage\n', 'jobs', 1, /jobs must be a list/);
  });

  it('refuses unknown top-level keys, with a hint when they belong to a job', () => {
    assertOneProblem('jobs: []\ntimezon: UTC\n', 'timezon', 2, /did you mean "timezone"\?/);
    assertOneProblem('jobs: []\nrules: []\n', 'rules', 2, /belongs to a job/);
  });

  it('refuses a job with neither type nor module, and unknown types', () => {
    assertOneProblem('jobs:\n  - name: a\n    schedule: "0 * * * *"\n', 'jobs[0]', 2, /neither type nor module/);
    assertOneProblem('jobs:\n  - name: a\n    type: digest\n    schedule: "0 * * * *"\n', 'jobs[0].type', 3, /unknown job type "digest".*one of inbox-rules, agenda-digest, calendar-rules, custom/);
    assertOneProblem('jobs:\n  - name: a\n    type: custom\n    schedule: "0 * * * *"\n', 'jobs[0]', 2, /needs module:/);
  });

  it('refuses keys of another job type', () => {
    const p = assertOneProblem('jobs:\n  - name: a\n    type: inbox-rules\n    module: ./x.js\n    schedule: "0 * * * *"\n    rules:\n      - name: r\n        match: { isRead: true }\n        actions: [ { flag: true } ]\n', 'jobs[0].module', 4, /only for custom jobs/);
    assert.equal(p.column, 5);
    assertOneProblem('jobs:\n  - name: a\n    type: agenda-digest\n    schedule: "0 * * * *"\n    folder: inbox\n', 'jobs[0].folder', 5, /only for inbox-rules jobs/);
  });

  it('refuses bad job names, missing names and missing schedules', () => {
    assertOneProblem('jobs:\n  - name: my job\n    type: agenda-digest\n    schedule: "0 * * * *"\n', 'jobs[0].name', 2, /not allowed.*e\.g\. name: my-job/);
    assertOneProblem('jobs:\n  - type: agenda-digest\n    schedule: "0 * * * *"\n', 'jobs[0]', 2, /no name/);
    assertOneProblem('jobs:\n  - name: a\n    type: agenda-digest\n', 'jobs[0]', 2, /no schedule/);
  });

  it('validates schedules with node-cron', () => {
    const cases: [string, RegExp][] = [
      ['"60 * * * *"', /60 is a invalid expression for minute/],
      ['"* * * * * * *"', /expected 5 or 6 fields but got 7/],
      ['"every day"', /not a valid cron expression/],
      ['5', /schedule must be a cron expression in quotes/],
    ];
    for (const [schedule, message] of cases) {
      assertOneProblem(`jobs:\n  - name: a\n    type: agenda-digest\n    schedule: ${schedule}\n`, 'jobs[0].schedule', 4, message);
    }
  });

  it('refuses an invalid or non-text timezone', () => {
    assertOneProblem('timezone: Europe/Atlantis\njobs: []\n', 'timezone', 1, /unknown time zone/);
    assertOneProblem('timezone: 2\njobs: []\n', 'timezone', 1, /IANA time zone name/);
  });

  it('refuses duplicate job names', () => {
    const text = 'jobs:\n  - name: a\n    type: agenda-digest\n    schedule: "0 * * * *"\n  - name: a\n    type: agenda-digest\n    schedule: "0 * * * *"\n';
    assertOneProblem(text, 'jobs[1].name', 5, /duplicate job name "a" \(also jobs\[0\], line 2\)/);
  });

  it('refuses duplicate rule names within a job', () => {
    const text = withRules('      - name: r\n        match: { isRead: true }\n        actions: [ { flag: true } ]\n      - name: r\n        match: { isRead: false }\n        actions: [ { flag: true } ]\n');
    assertOneProblem(text, 'jobs[0].rules[1].name', 9, /duplicate rule name "r" in this job \(also rules\[0\], line 6\)/);
  });

  it('refuses an inbox-rules job without rules, and rules without name, match or actions', () => {
    assertOneProblem('jobs:\n  - name: a\n    type: inbox-rules\n    schedule: "0 * * * *"\n', 'jobs[0]', 2, /needs rules:/);
    assertOneProblem(withRules('      []\n').replace('rules:\n      []', 'rules: []'), 'jobs[0].rules', 5, /non-empty list/);
    const problems = problemsOf(withRules('      - stop: true\n'));
    assert.deepEqual(problems.map((p) => [p.line, p.key]), [
      [6, 'jobs[0].rules[0]'],
      [6, 'jobs[0].rules[0]'],
      [6, 'jobs[0].rules[0]'],
    ]);
    assert.match(problems.map((p) => p.message).join('\n'), /no name[\s\S]*no match:[\s\S]*no actions:/);
  });

  it('refuses an empty match with the olderThanDays: 0 hint', () => {
    assertOneProblem(withRules('      - name: r\n        match: {}\n        actions: [ { flag: true } ]\n'), 'jobs[0].rules[0].match', 7, /every message.*match: \{ olderThanDays: 0 \}/);
  });

  it('checks nested any: empty list, empty sub-spec, typos inside', () => {
    assertOneProblem(withRules('      - name: r\n        match: { any: [] }\n        actions: [ { flag: true } ]\n'), 'jobs[0].rules[0].match.any', 7, /non-empty list.*matches nothing/);
    const text = withRules('      - name: r\n        match:\n          any:\n            - { from: a@example.com }\n            - { subjectContain: x }\n            - {}\n        actions: [ { flag: true } ]\n');
    const problems = problemsOf(text);
    assert.deepEqual(problems.map((p) => [p.line, p.key]), [
      [10, 'jobs[0].rules[0].match.any[1].subjectContain'],
      [11, 'jobs[0].rules[0].match.any[2]'],
    ]);
  });

  it('says where a misplaced key belongs', () => {
    assertOneProblem(withRules('      - name: r\n        fromDomain: example.com\n        match: { isRead: true }\n        actions: [ { flag: true } ]\n'), 'jobs[0].rules[0].fromDomain', 7, /is a match key: put it under match:/);
    assertOneProblem(withRules('      - name: r\n        match: { isRead: true, markRead: true }\n        actions: [ { flag: true } ]\n'), 'jobs[0].rules[0].match.markRead', 7, /is an action, not a condition/);
    assertOneProblem(withRules('      - name: r\n        match: { isRead: true }\n        actions: [ { subjectContains: x } ]\n'), 'jobs[0].rules[0].actions[0].subjectContains', 8, /is a condition: put it under match:/);
    assertOneProblem(withRules('      - name: r\n        match: { isRead: true }\n        actions: [ { flag: true } ]\n        stpo: true\n'), 'jobs[0].rules[0].stpo', 9, /did you mean "stop"\?/);
    assertOneProblem(withRules('      - name: r\n        match: { isRead: true }\n        actions: [ { flagg: true } ]\n'), 'jobs[0].rules[0].actions[0].flagg', 8, /unknown action "flagg".*did you mean "flag"\?/);
  });

  it('checks the text match keys', () => {
    const rule = (match: string) => withRules(`      - name: r\n        match: ${match}\n        actions: [ { flag: true } ]\n`);
    assertOneProblem(rule('{ from: example.com }'), 'jobs[0].rules[0].match.from', 7, /write fromDomain: example\.com/);
    assertOneProblem(rule('{ from: "@example.com" }'), 'jobs[0].rules[0].match.from', 7, /write fromDomain: example\.com/);
    assertOneProblem(rule('{ fromDomain: a@example.com }'), 'jobs[0].rules[0].match.fromDomain', 7, /fromDomain: example\.com.*from: a@example\.com/);
    assertOneProblem(rule('{ fromDomain: "*.example.com" }'), 'jobs[0].rules[0].match.fromDomain', 7, /already matches subdomains/);
    assertOneProblem(rule('{ to: [a@example.com, bob] }'), 'jobs[0].rules[0].match.to[1]', 7, /not an email address/);
    assertOneProblem(rule('{ subjectContains: 2024 }'), 'jobs[0].rules[0].match.subjectContains', 7, /put it in quotes: "2024"/);
    assertOneProblem(rule('{ subjectContains: [] }'), 'jobs[0].rules[0].match.subjectContains', 7, /empty list/);
    assertOneProblem(rule('{ bodyContains: "  " }'), 'jobs[0].rules[0].match.bodyContains', 7, /empty text/);
    assertOneProblem(rule('{ subjectMatches: "/invoice/i" }'), 'jobs[0].rules[0].match.subjectMatches', 7, /slashes.*subjectMatches: "invoice"/);
    assertOneProblem(rule('{ subjectMatches: [ok, "a[" ] }'), 'jobs[0].rules[0].match.subjectMatches[1]', 7, /invalid regular expression/);
  });

  it('checks the other match keys', () => {
    const rule = (match: string) => withRules(`      - name: r\n        match: ${match}\n        actions: [ { flag: true } ]\n`);
    assertOneProblem(rule('{ isRead: yes }'), 'jobs[0].rules[0].match.isRead', 7, /true or false, but it is the text "yes"/);
    assertOneProblem(rule('{ hasAttachments: 1 }'), 'jobs[0].rules[0].match.hasAttachments', 7, /true or false/);
    assertOneProblem(rule('{ importance: High }'), 'jobs[0].rules[0].match.importance', 7, /did you mean "high"\?/);
    assertOneProblem(rule('{ olderThanDays: -1 }'), 'jobs[0].rules[0].match.olderThanDays', 7, /whole number of days/);
    assertOneProblem(rule('{ olderThanDays: 1.5 }'), 'jobs[0].rules[0].match.olderThanDays', 7, /whole number of days/);
    assertOneProblem(rule('{ all: [] }'), 'jobs[0].rules[0].match.all', 7, /use any: \[ … \] for "or"/);
  });

  it('checks action shapes', () => {
    const rule = (actions: string) => withRules(`      - name: r\n        match: { isRead: false }\n        actions: ${actions}\n`);
    assertOneProblem(rule('[ { markRead: true, flag: true } ]'), 'jobs[0].rules[0].actions[0]', 8, /exactly one key.*\[ \{ markRead: … \}, \{ flag: … \} \]/);
    assertOneProblem(rule('[ {} ]'), 'jobs[0].rules[0].actions[0]', 8, /empty action/);
    assertOneProblem(rule('[ markRead ]'), 'jobs[0].rules[0].actions[0]', 8, /write \{ markRead: true \}/);
    assertOneProblem(rule('[]'), 'jobs[0].rules[0].actions', 8, /non-empty list/);
    assertOneProblem(rule('[ { delete: false } ]'), 'jobs[0].rules[0].actions[0].delete', 8, /delete must be true/);
    assertOneProblem(rule('[ { markRead: "true" } ]'), 'jobs[0].rules[0].actions[0].markRead', 8, /true or false/);
    assertOneProblem(rule('[ { setImportance: urgent } ]'), 'jobs[0].rules[0].actions[0].setImportance', 8, /low, normal or high/);
    assertOneProblem(rule('[ { forwardTo: [a@example.com, nobody] } ]'), 'jobs[0].rules[0].actions[0].forwardTo[1]', 8, /not one/);
    assertOneProblem(rule('[ { webhook: "ftp://example.com/x" } ]'), 'jobs[0].rules[0].actions[0].webhook', 8, /http\(s\) URL/);
    assertOneProblem(rule('[ { webhook: not a url } ]'), 'jobs[0].rules[0].actions[0].webhook', 8, /http\(s\) URL/);
    assertOneProblem(rule('[ { categorize: [] } ]'), 'jobs[0].rules[0].actions[0].categorize', 8, /empty list/);
  });

  it('checks folder paths of moveTo, copyTo and folder', () => {
    const rule = (actions: string) => withRules(`      - name: r\n        match: { isRead: false }\n        actions: ${actions}\n`);
    for (const bad of ['""', '"/Inbox"', '"Finance/"', '"A//B"', '"A/ /B"']) {
      assertOneProblem(rule(`[ { moveTo: ${bad} } ]`), 'jobs[0].rules[0].actions[0].moveTo', 8, /folder path/);
      assertOneProblem(rule(`[ { copyTo: ${bad} } ]`), 'jobs[0].rules[0].actions[0].copyTo', 8, /folder path/);
    }
    assertOneProblem(rule('[ { moveTo: 3 } ]'), 'jobs[0].rules[0].actions[0].moveTo', 8, /takes a folder path/);
    const ok = parseJobsFile(rule('[ { copyTo: "Finance/Invoices" }, { moveTo: archive } ]'), 'x.yaml');
    assert.deepEqual((ok.jobs[0] as InboxRulesJob).rules[0]!.actions, [{ copyTo: 'Finance/Invoices' }, { moveTo: 'archive' }]);
    assertOneProblem('jobs:\n  - name: a\n    type: inbox-rules\n    schedule: "0 * * * *"\n    folder: "Projects//A"\n    rules:\n      - name: r\n        match: { isRead: true }\n        actions: [ { flag: true } ]\n', 'jobs[0].folder', 5, /empty level/);
  });

  it('refuses two moves in one rule', () => {
    const rule = (actions: string) => withRules(`      - name: r\n        match: { isRead: false }\n        actions: ${actions}\n`);
    assertOneProblem(rule('[ { moveTo: A }, { delete: true } ]'), 'jobs[0].rules[0].actions[1]', 8, /may not both moveTo and delete/);
    assertOneProblem(rule('[ { delete: true }, { markRead: true }, { moveTo: A } ]'), 'jobs[0].rules[0].actions[2]', 8, /may not both moveTo and delete/);
    assertOneProblem(rule('[ { moveTo: A }, { moveTo: B } ]'), 'jobs[0].rules[0].actions[1]', 8, /moves the message twice.*copyTo/);
  });

  it('refuses non-boolean backfill and stop (YAML 1.2: yes is text)', () => {
    assertOneProblem('jobs:\n  - name: a\n    type: inbox-rules\n    schedule: "0 * * * *"\n    backfill: yes\n    rules:\n      - name: r\n        match: { isRead: true }\n        actions: [ { flag: true } ]\n', 'jobs[0].backfill', 5, /true or false/);
    assertOneProblem(withRules('      - name: r\n        match: { isRead: true }\n        actions: [ { flag: true } ]\n        stop: 1\n'), 'jobs[0].rules[0].stop', 9, /true or false/);
  });

  it('refuses non-mapping options of a custom job', () => {
    assertOneProblem('jobs:\n  - name: a\n    module: ./a.js\n    schedule: "0 * * * *"\n    options: [1]\n', 'jobs[0].options', 5, /options must be a mapping/);
  });
});

describe('suggest', () => {
  it('finds close keys and ignores distant ones', () => {
    assert.equal(suggest('subjectContain', ['subjectContains', 'subjectMatches']), 'subjectContains');
    assert.equal(suggest('FROMDOMAIN', ['from', 'fromDomain']), 'fromDomain');
    assert.equal(suggest('banana', ['from', 'to']), undefined);
  });
});

describe('parseJobsFile: the rules v2 match keys', () => {
  const rule = (match: string) => withRules(`      - name: r\n        match: ${match}\n        actions: [ { flag: true } ]\n`);

  it('accepts each new key in its documented forms', () => {
    const file = parseJobsFile(rule('{ header: { name: List-Id, matches: "^<news" }, attachmentName: ["*.pdf", "scan-??.png"], attachmentType: { types: [image/*], inline: true }, fromContacts: false, sentToMe: cc }'), 'a.yaml');
    const match = (file.jobs[0] as InboxRulesJob).rules[0]!.match;
    assert.deepEqual(match.header, { name: 'List-Id', matches: '^<news' });
    assert.deepEqual(match.attachmentName, { patterns: ['*.pdf', 'scan-??.png'], inline: false });
    assert.deepEqual(match.attachmentType, { patterns: ['image/*'], inline: true });
    assert.equal(match.fromContacts, false);
    assert.equal(match.sentToMe, 'cc');
  });

  it('refuses a bad value of each, naming the key and the fix', () => {
    assertOneProblem(rule('{ header: { name: List-Id } }'), 'jobs[0].rules[0].match.header', 7, /exactly one of contains: \(text\) or matches:/);
    assertOneProblem(rule('{ header: { name: "List Id", contains: x } }'), 'jobs[0].rules[0].match.header.name', 7, /header's field name/);
    assertOneProblem(rule('{ header: { name: X-A, matches: "(" } }'), 'jobs[0].rules[0].match.header.matches', 7, /invalid regular expression/);
    assertOneProblem(rule('{ attachmentName: [] }'), 'jobs[0].rules[0].match.attachmentName', 7, /empty list/);
    assertOneProblem(rule('{ attachmentType: { kinds: [pdf] } }'), 'jobs[0].rules[0].match.attachmentType.kinds', 7, /takes types: and inline:/);
    assertOneProblem(rule('{ fromContacts: yes please }'), 'jobs[0].rules[0].match.fromContacts', 7, /fromContacts must be true .* or false/);
    assertOneProblem(rule('{ sentToMe: drect }'), 'jobs[0].rules[0].match.sentToMe', 7, /did you mean "direct"/);
  });
});
