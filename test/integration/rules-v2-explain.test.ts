import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cli } from '../helpers/cli.ts';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

const ALICE = 'alice@contoso.test';

const JOBS = `jobs:
  - name: triage
    type: inbox-rules
    schedule: "*/5 * * * *"
    backfill: true
    rules:
      - name: invoices
        match: { subjectMatches: "^Invoice" }
        actions: [ { categorize: [Finance] } ]
      - name: newsletters
        match: { fromDomain: news.example.com }
        actions: [ { markRead: true }, { moveTo: Newsletters } ]
        stop: true
      - name: everything-unread
        match: { isRead: false }
        actions: [ { flag: true } ]
  - name: agenda
    type: agenda-digest
    schedule: "0 7 * * *"
`;

describe('explain and dry-run reasons through the installed binary', () => {
  let h: Harness;
  let newsId: string;

  before(async () => {
    h = await startHarness({ jobsFile: JOBS });
    await signIn(h);
    newsId = h.sandbox.admin.deliver(ALICE, { subject: 'Re: invoice Zq7', from: 'news@news.example.com', body: 'hello' }).id;
    h.sandbox.admin.deliver(ALICE, { subject: 'Invoice Zq7 for May', from: 'billing@shop.example.com', body: 'pay' });
  });
  after(() => h?.close());

  test('explain --subject: every rule in order, the deciding key, the actions; nothing changes', async () => {
    const before = h.sandbox.admin.messages(ALICE, 'inbox').find((m) => m.id === newsId)!;
    const out = await cli(['explain', 'triage', '--subject', 'zq7'], h.env, h.dir, { timeoutMs: 120_000 });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /"Re: invoice Zq7" from news@news\.example\.com/);
    assert.match(out.stdout, /not matched invoices: subjectMatches \^Invoice did not match 'Re: invoice Zq7'/);
    assert.match(out.stdout, /matched +newsletters: fromDomain news\.example\.com matched sender news@news\.example\.com \(stop/);
    assert.match(out.stdout, /would markRead\n +would moveTo "Newsletters"/);
    assert.match(out.stdout, /not matched everything-unread: not looked at: an earlier matching rule has stop: true/);
    assert.match(out.stdout, /matched +invoices: subjectMatches \^Invoice matched 'Invoice Zq7 for May'\n +would categorize \["Finance"\]/);
    const afterwards = h.sandbox.admin.messages(ALICE, 'inbox').find((m) => m.id === newsId)!;
    assert.deepEqual(afterwards, before, 'explain changes nothing');
  });

  test('explain --message --json: one message, each rule with matched, because and actions', async () => {
    const out = await cli(['explain', 'triage', '--message', newsId, '--json'], h.env, h.dir, { timeoutMs: 120_000 });
    assert.equal(out.code, 0, out.stderr);
    const result = JSON.parse(out.stdout) as { job: string; messages: { messageId: string; rules: { rule: string; matched: boolean; because: string; actions: { action: string; value: unknown }[] }[] }[] };
    assert.equal(result.job, 'triage');
    assert.equal(result.messages.length, 1);
    const [message] = result.messages;
    assert.deepEqual(message!.rules.map((r) => [r.rule, r.matched]), [['invoices', false], ['newsletters', true], ['everything-unread', false]]);
    assert.deepEqual(message!.rules[1]!.actions.map((a) => [a.action, a.value]), [['markRead', true], ['moveTo', 'Newsletters']]);
    assert.equal(message!.rules[1]!.because, 'fromDomain news.example.com matched sender news@news.example.com');
  });

  test('explain --last N looks at the N newest messages; usage errors exit 64', async () => {
    const out = await cli(['explain', 'triage', '--last', '2', '--json'], h.env, h.dir, { timeoutMs: 120_000 });
    assert.equal(out.code, 0, out.stderr);
    assert.equal((JSON.parse(out.stdout) as { messages: unknown[] }).messages.length, 2);
    const both = await cli(['explain', 'triage', '--last', '2', '--subject', 'x'], h.env, h.dir);
    assert.equal(both.code, 64);
    assert.match(both.stderr, /cannot be combined/);
    const agenda = await cli(['explain', 'agenda'], h.env, h.dir);
    assert.equal(agenda.code, 64);
    assert.match(agenda.stderr, /agenda is a agenda-digest job, not inbox-rules/);
  });

  test('run --dry-run --json gives each planned action the same reason', async () => {
    const out = await cli(['run', 'triage', '--dry-run', '--json'], h.env, h.dir, { timeoutMs: 120_000 });
    assert.equal(out.code, 0, out.stderr);
    const result = JSON.parse(out.stdout) as { actions: { subject: string; action: string; because?: string }[] };
    const news = result.actions.filter((a) => a.subject === 'Re: invoice Zq7');
    assert.deepEqual(news.map((a) => [a.action, a.because]), [
      ['markRead', 'fromDomain news.example.com matched sender news@news.example.com'],
      ['moveTo', 'fromDomain news.example.com matched sender news@news.example.com'],
    ]);
  });
});
