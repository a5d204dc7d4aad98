import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hostOf, signIn, startHarness, type Harness } from '../helpers/harness.ts';

describe('sign in once through the sandbox, then run the triage job', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('before sign-in: status says signed-out, and a run exits with the remedy', async () => {
    const status = (await h.http.get('/api/status').expect(200)).body;
    assert.equal(status.state, 'signed-out');
    assert.equal(status.ready, false);
    assert.equal(status.account, null);
    assert.equal(status.mode, 'delegated');
    const run = (await h.http.post('/api/jobs/triage/run').set('Host', hostOf(h)).expect(200)).body;
    assert.equal(run.ok, false);
    assert.match(run.error, /Nobody is signed in\. Sign in: http:\/\/127\.0\.0\.1:3000\/auth\/signin/);
  });

  test('the sign-in lands on the dashboard with the account; tokens are stored encrypted', async () => {
    const { response } = await signIn(h);
    assert.equal(response.status, 303);
    assert.match(response.headers.location!, /^\/\?notice=Signed%20in%20as%20alice%40contoso\.test/);
    const status = (await h.http.get('/api/status').expect(200)).body;
    assert.equal(status.state, 'ready');
    assert.equal(status.ready, true);
    assert.equal(status.account.upn, 'alice@contoso.test');
    assert.equal(status.account.tid, h.sandbox.tenantId);
    assert.equal(status.account.oid, h.sandbox.users[0]!.oid);
    const page = await h.http.get('/').expect(200);
    assert.match(page.text, /data-testid="account-upn">alice@contoso\.test</);
    const stored = await h.rt.store.get<Record<string, unknown>>('auth:tokens');
    assert.ok(stored && typeof stored.ct === 'string' && !JSON.stringify(stored).includes('refresh'), 'tokens are sealed in the store');
    for (const line of h.logs) assert.doesNotMatch(line, /eyJ[A-Za-z0-9_-]{10,}\.|1\.AXEA/, 'no token or code in the logs');
  });

  test('run triage: newsletters move and are marked read, invoices and urgent mail are flagged', async () => {
    const before = h.sandbox.admin.messages('alice@contoso.test', 'inbox');
    const newsletters = before.filter((m) => /@(.+\.)?news\.example\.com$/i.test(m.from));
    assert.ok(newsletters.length > 5, 'the seeded mailbox has newsletters');
    const result = (await h.http.post('/api/jobs/triage/run').set('Host', hostOf(h)).expect(200)).body;
    assert.equal(result.ok, true, result.error);
    assert.equal(result.job, 'triage');
    assert.equal(result.dryRun, false);
    assert.equal(result.examined, before.length);
    assert.ok(result.graphRequests > 0);
    const moved = result.actions.filter((a: { action: string }) => a.action === 'moveTo');
    assert.equal(moved.length, newsletters.length);
    for (const a of result.actions) assert.equal(a.result, 'done', JSON.stringify(a));

    const folder = h.sandbox.admin.folders('alice@contoso.test').find((f) => f.displayName === 'Newsletters');
    assert.ok(folder, 'the Newsletters folder was created');
    const inNewsletters = h.sandbox.admin.messages('alice@contoso.test', folder.id);
    assert.equal(inNewsletters.length, newsletters.length);
    assert.ok(inNewsletters.every((m) => m.isRead));
    const inbox = h.sandbox.admin.messages('alice@contoso.test', 'inbox');
    for (const m of inbox) {
      if (/invoice|urgent/i.test(m.subject)) assert.equal(m.flagStatus, 'flagged', m.subject);
    }
    assert.ok(!inbox.some((m) => /@(.+\.)?news\.example\.com$/i.test(m.from)));
  });

  test('a second run acts on nothing again; new mail is picked up from the stored delta link', async () => {
    const again = (await h.http.post('/api/jobs/triage/run').set('Host', hostOf(h)).expect(200)).body;
    assert.equal(again.ok, true, again.error);
    assert.equal(again.actions.length, 0, JSON.stringify(again.actions.slice(0, 3)));
    h.sandbox.admin.deliver('alice@contoso.test', { subject: 'This week in news', from: 'weekly@mail.news.example.com' });
    h.sandbox.admin.deliver('alice@contoso.test', { subject: 'URGENT: server down', from: 'ops@contoso.test' });
    const third = (await h.http.post('/api/jobs/triage/run').set('Host', hostOf(h)).expect(200)).body;
    assert.equal(third.ok, true, third.error);
    assert.deepEqual(third.actions.map((a: { rule: string; action: string }) => `${a.rule}:${a.action}`).sort(), ['newsletters:markRead', 'newsletters:moveTo', 'urgent:flag']);
  });

  test('dry run reports what it would do and changes nothing', async () => {
    const m = h.sandbox.admin.deliver('alice@contoso.test', { subject: 'Invoice INV-1', from: 'billing@vendor.example' });
    const dry = (await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', hostOf(h)).expect(200)).body;
    assert.equal(dry.dryRun, true);
    assert.deepEqual(dry.actions.map((a: { action: string; result: string }) => `${a.action}:${a.result}`), ['flag:planned']);
    assert.equal(h.sandbox.admin.messages('alice@contoso.test', 'inbox').find((x) => x.id === m.id || x.immutableId === m.immutableId)?.flagStatus, 'notFlagged');
    const real = (await h.http.post('/api/jobs/triage/run').set('Host', hostOf(h)).expect(200)).body;
    assert.deepEqual(real.actions.map((a: { action: string; result: string }) => `${a.action}:${a.result}`), ['flag:done'], 'the dry run did not advance the delta link');
  });

  test('the audit log: status lists recent actions newest first, and runner.recentActions filters by job', async () => {
    const status = (await h.http.get('/api/status').expect(200)).body;
    assert.ok(Array.isArray(status.recentActions) && status.recentActions.length === 20, 'bounded to 20 in status');
    const first = status.recentActions[0];
    assert.equal(first.job, 'triage');
    assert.equal(first.action, 'flag');
    assert.equal(first.result, 'done');
    assert.equal(first.subject, 'Invoice INV-1');
    assert.equal(first.rule, 'invoices');
    assert.ok(first.messageId && !Number.isNaN(Date.parse(first.at)));
    for (let i = 1; i < status.recentActions.length; i++) assert.ok(status.recentActions[i - 1].at >= status.recentActions[i].at);
    const viaRunner = await h.rt.runner.recentActions({ job: 'triage', limit: 3 });
    assert.deepEqual(viaRunner, status.recentActions.slice(0, 3));
    assert.deepEqual(await h.rt.runner.recentActions({ job: 'no-such-job' }), []);
    assert.ok(!status.recentActions.some((a: { result: string }) => a.result === 'planned'), 'dry-run plans are not actions taken');
  });

  test('the dashboard shows the last run', async () => {
    const page = await h.http.get('/').expect(200);
    assert.match(page.text, /data-job="triage"/);
    assert.match(page.text, /class="pill ok">ok<\/span>/);
  });

  test("the shipped agenda job mails today's sample meetings, in Berlin time, to the inbox", async () => {
    const berlin = (ms: number, o: Intl.DateTimeFormatOptions) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Berlin', ...o }).format(ms);
    const today = berlin(Date.now(), { year: 'numeric', month: '2-digit', day: '2-digit' });
    const expected = h.sandbox.admin.events('alice@contoso.test').filter((e) => berlin(Date.parse(e.start), { year: 'numeric', month: '2-digit', day: '2-digit' }) === today);
    const run = await h.rt.runner.run('agenda');
    assert.equal(run.ok, true, run.error);
    assert.equal(run.examined, expected.length, 'the seeded sample week (none at weekends)');
    const subject = run.actions[0]?.subject ?? '';
    assert.match(subject, new RegExp(`^Agenda for ${today}: ${expected.length ? `${expected.length} event` : 'nothing scheduled'}`));
    assert.ok(h.sandbox.admin.messages('alice@contoso.test', 'inbox').some((m) => m.subject === subject));
  });

  test('an unknown job is a 404 with the list of jobs', async () => {
    const res = await h.http.post('/api/jobs/nope/run').set('Host', hostOf(h)).expect(404);
    assert.match(res.body.error.remedy, /triage/);
  });
});
