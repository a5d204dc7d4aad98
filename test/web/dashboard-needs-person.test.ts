import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

/** The dashboard's banner for each state a person must act on, and never a sign-in offered where it cannot help. */
describe('dashboard banners for needs-config and a kept sign-in that may clear', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ sandboxOptions: { accessTokenLifetimeSec: 120 } });
    await signIn(h);
  });
  after(() => h.close());

  const refreshFails = async (error: { status: number; error: string; aadsts: number }) => {
    h.sandbox.admin.injectTokenError('alice@contoso.test', error, 1);
    h.advance(61_000);
    const run = (await h.http.post('/api/jobs/triage/run?dryRun=1').set('Host', 'localhost:3000')).body;
    assert.equal(run.ok, false);
  };
  const banner = async () => /<section class="banner[^"]*" role="alert" data-testid="attention">([\s\S]*?)<\/section>/.exec((await h.http.get('/')).text)?.[1] ?? '';

  test('an expired client secret: needs-config, the fix in words, and no sign-in button', async () => {
    await refreshFails({ status: 401, error: 'invalid_client', aadsts: 7000222 });
    assert.equal((await h.http.get('/api/status')).body.state, 'needs-config');
    const html = await banner();
    assert.match(html, /The configuration or the app registration must change/);
    assert.match(html, /client secret has expired/);
    assert.match(html, /A new sign-in would not help/);
    assert.doesNotMatch(html, /auth\/signin/);
    await h.rt.auth.getAccessToken({ forceRefresh: true });
  });

  test('a Conditional Access block: needs-signin, says the sign-in is kept and when the agent tries again', async () => {
    await refreshFails({ status: 400, error: 'invalid_grant', aadsts: 53003 });
    const html = await banner();
    assert.match(html, /A new sign-in is needed/);
    assert.match(html, /Conditional Access blocked the token/);
    assert.match(html, /data-testid="next-attempt">The sign-in is kept; the agent tries again by itself at \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
  });
});
