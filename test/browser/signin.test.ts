import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startAgentServer } from '../helpers/server.ts';

const CHROMIUM = '/usr/bin/chromium';

describe('a person signs in with a real browser and runs the job from the dashboard', { skip: !existsSync(CHROMIUM) && !process.env.CI ? 'no /usr/bin/chromium (apt-get install -y chromium)' : false }, () => {
  let agent: Awaited<ReturnType<typeof startAgentServer>>;
  let browser: Browser;
  let page: Page;

  before(async () => {
    agent = await startAgentServer();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    // The sandbox's CA is not in Chromium's store; a person would trust it once, the test ignores it.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    page = await context.newPage();
  });
  after(async () => {
    await browser?.close();
    await agent?.close();
  });

  test('sign in through the sandbox page, see the account, run now, see the result', async () => {
    await page.goto(agent.url);
    assert.match(await page.textContent('body') ?? '', /Nobody is signed in yet/);
    await page.getByRole('link', { name: 'Sign in' }).first().click();
    await page.waitForURL((url) => url.pathname.endsWith('/oauth2/v2.0/authorize'));
    assert.match(await page.title(), /Sign in/i);
    await page.getByLabel(/email|user/i).fill('alice@contoso.test');
    await page.getByLabel(/password/i).fill('sandbox');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.pathname === '/' && url.port === new URL(agent.url).port);
    assert.equal(await page.getByTestId('account-upn').textContent(), 'alice@contoso.test');

    await page.getByRole('button', { name: 'Run now' }).first().click();
    await page.waitForLoadState('load');
    await page.waitForSelector('[data-testid="run-result"]');
    const result = await page.getByTestId('run-result').textContent();
    assert.match(result ?? '', /triage\s+run: finished/);
    assert.match(result ?? '', /newsletters/);
    assert.match(await page.getByTestId('last-run').first().textContent() ?? '', /ok/);
    const moved = agent.sandbox.admin.folders('alice@contoso.test').find((f) => f.displayName === 'Newsletters');
    assert.ok(moved && moved.totalItemCount > 0, 'the mailbox really changed');
  });

  test('a hostile subject shows as text, never as markup', async () => {
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    agent.sandbox.admin.deliver('alice@contoso.test', { subject: '<img src=x onerror=alert(1)> urgent', from: 'mallory@contoso.test' });
    await page.goto(agent.url);
    await page.getByRole('button', { name: 'Run now' }).first().click();
    await page.waitForSelector('[data-testid="run-result"]');
    const cell = page.getByTestId('run-result').getByText('<img src=x onerror=alert(1)> urgent', { exact: true });
    assert.equal(await cell.count(), 1, 'the subject is shown literally');
    assert.equal(await page.locator('[data-testid="run-result"] img').count(), 0, 'no element was created from it');
    assert.deepEqual(dialogs, []);
  });

  test('the attention banner appears after invalid_grant and goes after signing in again', async () => {
    agent.sandbox.admin.injectTokenError('alice@contoso.test', { status: 400, error: 'invalid_grant', aadsts: 70008, description: 'The provided authorization code or refresh token has expired due to inactivity.' });
    await assert.rejects(agent.rt.auth.getAccessToken({ forceRefresh: true }));
    await page.goto(agent.url);
    const banner = page.getByTestId('attention');
    assert.match(await banner.textContent() ?? '', /A new sign-in is needed[\s\S]*AADSTS70008/);
    await banner.getByRole('link', { name: 'Sign in again' }).click();
    await page.waitForURL((url) => url.pathname.endsWith('/oauth2/v2.0/authorize'));
    await page.getByLabel(/email|user/i).fill('alice@contoso.test');
    await page.getByLabel(/password/i).fill('sandbox');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.pathname === '/' && url.port === new URL(agent.url).port);
    assert.equal(await page.getByTestId('attention').count(), 0);
    assert.equal(await page.getByTestId('token-state').textContent(), 'ready');
  });
});
