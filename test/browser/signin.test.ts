import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startAgentServer } from '../helpers/server.ts';

const CHROMIUM = '/usr/bin/chromium';
const NO_CHROMIUM = { skip: !existsSync(CHROMIUM) && !process.env.CI ? 'no /usr/bin/chromium (apt-get install -y chromium)' : false };

/**
 * Chromium as a person has it: its own certificate store, which does not hold the sandbox's CA, and no
 * `ignoreHTTPSErrors`. A page that would show "Your connection is not private" fails to load here.
 */
function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** The sign-in page is the sandbox's plain-HTTP loopback origin, and the browser counts it as a secure context (no "Not secure"). */
async function assertOnTheSignInOrigin(page: Page, sandbox: { signInUrl: string }): Promise<void> {
  assert.equal(new URL(page.url()).origin, sandbox.signInUrl);
  assert.match(sandbox.signInUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(await page.evaluate('window.isSecureContext'), true);
}

describe('a person signs in with a real browser and runs the job from the dashboard', NO_CHROMIUM, () => {
  let agent: Awaited<ReturnType<typeof startAgentServer>>;
  let browser: Browser;
  let page: Page;

  before(async () => {
    agent = await startAgentServer();
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
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
    await assertOnTheSignInOrigin(page, agent.sandbox);
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
    await assertOnTheSignInOrigin(page, agent.sandbox);
    await page.getByLabel(/email|user/i).fill('alice@contoso.test');
    await page.getByLabel(/password/i).fill('sandbox');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.pathname === '/' && url.port === new URL(agent.url).port);
    assert.equal(await page.getByTestId('attention').count(), 0);
    assert.equal(await page.getByTestId('token-state').textContent(), 'ready');
  });

  test('this browser does refuse the sandbox CA: the HTTPS origin would have shown a certificate warning', async () => {
    const other = await browser.newPage();
    try {
      await assert.rejects(other.goto(`${agent.sandbox.url}/common/v2.0/.well-known/openid-configuration`), /ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await other.close();
    }
  });
});

describe('any port works out of the box: PORT set, MS_REDIRECT_URI not', NO_CHROMIUM, () => {
  let agent: Awaited<ReturnType<typeof startAgentServer>>;
  let browser: Browser;

  before(async () => {
    agent = await startAgentServer({}, { redirectUri: false });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await agent?.close();
  });

  test('a real browser signs in on a non-default port and lands on the dashboard signed in', async () => {
    assert.equal(agent.env.MS_REDIRECT_URI, undefined);
    const port = new URL(agent.url).port;
    assert.notEqual(port, '3000');
    const page = await (await browser.newContext()).newPage();
    await page.goto(agent.url);
    await page.getByRole('link', { name: 'Sign in' }).first().click();
    await page.waitForURL((url) => url.pathname.endsWith('/oauth2/v2.0/authorize'));
    await assertOnTheSignInOrigin(page, agent.sandbox);
    assert.equal(new URL(page.url()).searchParams.get('redirect_uri'), `http://localhost:${port}/auth/callback`);
    await page.getByLabel(/email|user/i).fill('alice@contoso.test');
    await page.getByLabel(/password/i).fill('sandbox');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.pathname === '/' && url.port === port);
    assert.equal(await page.getByTestId('account-upn').textContent(), 'alice@contoso.test');
    assert.equal(await page.getByTestId('token-state').textContent(), 'ready');
  });
});

describe('the device code page opens in an unmodified browser', NO_CHROMIUM, () => {
  let agent: Awaited<ReturnType<typeof startAgentServer>>;
  let browser: Browser;

  before(async () => {
    agent = await startAgentServer();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await agent?.close();
  });

  test('the verification URI is on the sign-in origin; entering the code and signing in there completes the device sign-in', async () => {
    let shown!: (code: { verificationUri: string; userCode: string }) => void;
    const code = new Promise<{ verificationUri: string; userCode: string }>((resolve) => (shown = resolve));
    const signedIn = agent.rt.auth.deviceSignin((c) => shown(c));
    const { verificationUri, userCode } = await code;
    assert.equal(verificationUri, `${agent.sandbox.signInUrl}/devicelogin`);
    const page = await (await browser.newContext()).newPage();
    await page.goto(verificationUri);
    await assertOnTheSignInOrigin(page, agent.sandbox);
    await page.getByLabel('Code').fill(userCode);
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByLabel(/email|user/i).fill('alice@contoso.test');
    await page.getByLabel(/password/i).fill('sandbox');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('You have signed in').waitFor();
    const account = await signedIn;
    assert.equal(account.upn, 'alice@contoso.test');
  });
});
