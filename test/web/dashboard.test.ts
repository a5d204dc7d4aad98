import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hostOf, signIn, startHarness, type Harness } from '../helpers/harness.ts';

const TWO_JOBS = `jobs:
  - name: triage
    type: inbox-rules
    schedule: "*/5 * * * *"
    backfill: true
    rules:
      - name: urgent
        match: { subjectContains: urgent }
        actions: [ { flag: true } ]
  - name: invoices
    type: inbox-rules
    schedule: "0 * * * *"
    backfill: true
    rules:
      - name: invoices
        match: { subjectContains: invoice }
        actions: [ { categorize: [Finance] } ]
  - name: broken
    type: inbox-rules
    schedule: "0 0 * * *"
    folder: Nowhere/Else
    rules:
      - name: any
        match: { subjectContains: x }
        actions: [ { flag: true } ]
`;

describe('the dashboard tells at once whether all is well', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ jobsFile: TWO_JOBS });
    await signIn(h);
  });
  after(() => h.close());

  test('jobs table: schedule in words and cron, next run, never run yet', async () => {
    const html = (await h.http.get('/').expect(200)).text;
    assert.match(html, /Every 5 minutes/);
    assert.match(html, /<code class="muted">\*\/5 \* \* \* \*<\/code>/);
    assert.match(html, /Every hour|At 0 minutes past the hour/);
    assert.equal((html.match(/data-testid="last-run">\s*never\s*</g) ?? []).length, 3);
  });

  test('recent actions list what the jobs did, newest first, filtered by job', async () => {
    await h.http.post('/api/jobs/triage/run').set('Host', hostOf(h)).expect(200);
    await h.http.post('/api/jobs/invoices/run').set('Host', hostOf(h)).expect(200);
    const all = (await h.http.get('/').expect(200)).text;
    const table = all.slice(all.indexOf('data-testid="recent-actions"'));
    assert.match(table, /<td>triage<\/td><td>urgent<\/td>/);
    assert.match(table, /<td>invoices<\/td><td>invoices<\/td>/);
    assert.ok(table.indexOf('<td>invoices</td>') < table.indexOf('<td>triage</td>'), 'newest first');
    const filtered = (await h.http.get('/?job=triage').expect(200)).text;
    const rows = filtered.slice(filtered.indexOf('data-testid="recent-actions"'));
    assert.ok(!rows.includes('<td>invoices</td><td>invoices</td>'));
    assert.match(filtered, /<option value="triage" selected>/);
  });

  test('a failing job raises a banner with its reason', async () => {
    const ok = (await h.http.get('/').expect(200)).text;
    assert.doesNotMatch(ok, /data-testid="attention/, 'no banner while all is well');
    await h.http.post('/api/jobs/broken/run').set('Host', hostOf(h)).expect(200);
    const html = (await h.http.get('/').expect(200)).text;
    assert.match(html, /data-testid="attention-jobs"/);
    assert.match(html, /A job is failing/);
    assert.match(html, /<strong>broken<\/strong>: The folder &quot;Nowhere\/Else&quot; does not exist/);
  });
});
