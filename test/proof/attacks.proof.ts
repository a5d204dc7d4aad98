/**
 * Attacks on a started agent (its express app through supertest, its HTTP server in Chromium, its binary with hostile
 * files): each must be refused with a clear message, with nothing stored and nothing redeemed.
 * Already proved elsewhere, and not repeated here: a forged state and a callback with no sign-in started, a replayed
 * callback, another person's sign-in (with and without MAILBOX) and cross-site POSTs to two routes
 * (test/integration/signin-security.test.ts); the CSRF token of a form and the password gate (test/web/security.test.ts);
 * @odata.nextLink, Location and $batch URLs on another origin (test/graph/client-origin.test.ts); a hostile subject in
 * the run result (test/browser/signin.test.ts).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import supertest from 'supertest';
import { cli } from '../helpers/cli.ts';
import { hostOf, parseForm, signIn, startHarness, type Harness } from '../helpers/harness.ts';
import { startAgentServer } from '../helpers/server.ts';
import { freePort } from '../helpers/servers.ts';
import { writeFigures } from './figures.ts';

const ALICE = 'alice@contoso.test';
/** Every attack tried, and whether it was refused: written to the figures at the end. */
const tried: { attack: string; refused: boolean }[] = [];
const refused = (attack: string, ok: boolean) => {
  tried.push({ attack, refused: ok });
  assert.ok(ok, attack);
};

/** A sign-in started by `browser` (a cookie jar of its own), answered on the sandbox's page; `tamper` edits the authorize URL first. */
async function authorizeWith(h: Harness, browser: supertest.Agent, tamper: (url: URL) => void = () => undefined, answer: Record<string, string> = { username: ALICE, password: 'sandbox', action: 'signin' }) {
  const start = await browser.get('/auth/signin').set('Host', hostOf(h)).expect(302);
  const authorize = new URL(start.headers.location as string);
  tamper(authorize);
  const page = await h.fetch(authorize.href);
  const form = parseForm(await page.text());
  const posted = await h.fetch(new URL(form.action, authorize), {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...form.fields, ...answer }).toString(), redirect: 'manual',
  });
  const location = posted.headers.get('location');
  assert.equal(posted.status, 302, `the sandbox answered the sign-in form with ${posted.status}`);
  return { callback: new URL(location!), authorize };
}

describe('sign-in attacks: each refused, nothing stored, nothing redeemed', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  const nothingStored = async () => (await h.rt.store.get('auth:tokens')) === undefined && (await h.rt.store.get('auth:account')) === undefined;
  const codeRedemptions = () => h.sandbox.admin.tokenRequests().filter((t) => t.grantType === 'authorization_code').length;
  const at = (browser: supertest.Agent, callback: URL) => browser.get(callback.pathname + callback.search).set('Host', hostOf(h)).set('Accept', 'application/json');

  test('a code+state captured from another browser session is refused without redeeming the code; its own browser can still use it', async () => {
    const victim = supertest.agent(h.app);
    const attacker = supertest.agent(h.app);
    await victim.get('/auth/signin').set('Host', hostOf(h)).expect(302);
    const { callback } = await authorizeWith(h, attacker);
    const before = codeRedemptions();
    const res = await at(victim, callback);
    refused('code+state from another browser session', res.status === 400 && res.body.error.code === 'SIGNIN_STATE_INVALID' && (await nothingStored()) && codeRedemptions() === before);
    assert.equal((await at(attacker, callback)).status, 303, 'the code was never spent: the browser that started that sign-in still completes it');
    await h.http.post('/auth/signout').set('Host', hostOf(h)).set('Accept', 'application/json').expect(200);
  });

  test('a nonce mismatch was refused as "unexpected JWT claim value encountered": now refused with a message that names the nonce (nonce changed in the authorize URL)', async () => {
    const browser = supertest.agent(h.app);
    const { callback } = await authorizeWith(h, browser, (url) => url.searchParams.set('nonce', 'attacker-nonce'));
    const res = await at(browser, callback);
    refused('mismatched nonce', res.status >= 400 && res.status < 500 && /nonce/i.test(JSON.stringify(res.body)) && (await nothingStored()));
  });

  test('a PKCE challenge swapped for the attacker\'s: Entra refuses this agent\'s verifier, nothing is stored', async () => {
    const browser = supertest.agent(h.app);
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const { callback } = await authorizeWith(h, browser, (url) => url.searchParams.set('code_challenge', challenge));
    const res = await at(browser, callback);
    refused('PKCE verifier swap', res.status >= 400 && res.status < 500 && /AADSTS|verifier|PKCE/i.test(JSON.stringify(res.body)) && (await nothingStored()));
  });

  test('error= and error_description= injected into the callback of a started sign-in: shown as text, nothing stored', async () => {
    const browser = supertest.agent(h.app);
    const start = await browser.get('/auth/signin').set('Host', hostOf(h)).expect(302);
    const state = new URL(start.headers.location as string).searchParams.get('state')!;
    const payload = '<script>window.__xss=1</script><img src=x onerror=alert(1)>';
    const res = await browser.get(`/auth/callback?error=${encodeURIComponent(payload)}&error_description=${encodeURIComponent(`AADSTS50000: ${payload} Visit https://evil.example to fix`)}&state=${encodeURIComponent(state)}`)
      .set('Host', hostOf(h)).set('Accept', 'text/html');
    refused('error= / error_description= injection', res.status === 400 && !res.text.includes('<script>window.__xss') && !res.text.includes('<img src=x') && (await nothingStored()));
    assert.ok(!/href="https:\/\/evil\.example/.test(res.text), 'no link is made from the injected text');
  });

  test('a missing state (a code with no state) is refused', async () => {
    const browser = supertest.agent(h.app);
    const { callback } = await authorizeWith(h, browser);
    callback.searchParams.delete('state');
    const res = await at(browser, callback);
    refused('missing state', res.status === 400 && (await nothingStored()));
  });

  test('every POST route refuses a cross-site request and a form post without the CSRF token; nothing happens', async () => {
    await signIn(h);
    const routes = postRoutes(h.app);
    assert.ok(routes.length >= 5, `POST routes found: ${routes}`);
    h.sandbox.admin.clearLogs();
    for (const route of routes) {
      const url = route.replace(':name', 'triage');
      const cross = await supertest(h.app).post(url).set('Host', hostOf(h)).set('Origin', 'https://evil.example').set('Sec-Fetch-Site', 'cross-site').type('form').send({ password: 'x' });
      refused(`cross-site POST ${url}`, cross.status === 403);
      const noToken = await supertest(h.app).post(url).set('Host', hostOf(h)).set('Origin', `http://${hostOf(h)}`).set('Sec-Fetch-Site', 'same-origin').type('form').send({ password: 'x' });
      refused(`form POST ${url} without the CSRF token`, noToken.status === 403);
    }
    assert.equal(h.sandbox.admin.graphRequests().length, 0, 'no job ran');
    assert.equal((await h.http.get('/api/status')).body.state, 'ready', 'still signed in');
  });

  test('/auth/signin never redirects to an origin named by the request', async () => {
    for (const host of ['evil.example', 'localhost.evil.example:3000', '127.0.0.1.evil.example', 'evil.example:3000']) {
      const res = await supertest(h.app).get('/auth/signin').set('Host', host);
      const location = res.headers.location as string | undefined;
      const to = location ? new URL(location, `http://${host}`).origin : '';
      refused(`/auth/signin with Host: ${host}`, !location || [new URL(h.env.MS_REDIRECT_URI ?? 'http://localhost:3000').origin, h.sandbox.signInUrl].includes(to));
    }
  });
});

/** The POST routes of an express 5 app, from its router. */
function postRoutes(app: unknown): string[] {
  const stack = (app as { router: { stack: { route?: { path: string | string[]; methods: Record<string, boolean> } }[] } }).router.stack;
  return stack.filter((l) => l.route?.methods.post).flatMap((l) => [l.route!.path].flat());
}

describe('open redirects: /login\'s next and the password gate stay on the agent\'s origin', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { ADMIN_PASSWORD: 'correct horse battery' } });
  });
  after(() => h.close());

  const CANDIDATES = ['https://evil.example/', '//evil.example/', '/\\evil.example/', '\\\\evil.example', '/\t/evil.example', '/%2F%2Fevil.example', '/%5Cevil.example', 'javascript:alert(1)', '/..//evil.example', ' //evil.example', '/\n/evil.example', 'http:evil.example'];
  const origin = 'http://localhost:3000';

  test('after a good password, every hostile next lands on this origin', async () => {
    for (const next of CANDIDATES) {
      const browser = supertest.agent(h.app);
      const form = await browser.get(`/login?next=${encodeURIComponent(next)}`).set('Host', 'localhost:3000');
      const csrf = /name="_csrf" value="([^"]+)"/.exec(form.text)?.[1];
      assert.ok(csrf, 'the login form has a CSRF token');
      const res = await browser.post('/login').set('Host', 'localhost:3000').set('Origin', origin).set('Sec-Fetch-Site', 'same-origin').type('form').send({ _csrf: csrf, password: 'correct horse battery', next });
      assert.equal(res.status, 303);
      const to = new URL(res.headers.location as string, origin);
      refused(`/login next=${JSON.stringify(next)}`, to.origin === origin && to.protocol === 'http:');
    }
  });

  test('the password gate sends a person to /login with the page they asked for, never elsewhere', async () => {
    for (const target of ['//evil.example/', '/\\evil.example', '/?x=//evil.example']) {
      const res = await supertest(h.app).get(target).set('Host', 'localhost:3000').set('Accept', 'text/html');
      const location = res.headers.location as string | undefined;
      refused(`gate for ${target}`, !location || new URL(location, origin).origin === origin);
    }
  });
});

describe('hostile files and settings given to the binary: a clear refusal, no crash, nothing read that should not be', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  const refusedClearly = async (attack: string, body: string, name = 'hostile.yaml', job = 'triage') => {
    const file = path.join(h.dir, name);
    writeFileSync(file, body);
    const out = await cli(['run', job], { ...h.env, AGENT_CONFIG: file }, h.dir, { timeoutMs: 120_000 });
    refused(`${attack}: exit ${out.code}, ${out.stderr.split('\n')[0]?.slice(0, 200)}`, out.code === 1 && out.stderr.includes(name) && !/\n\s+at \S+ \(/.test(out.stderr));
    return out;
  };

  test('a 1 MB jobs file', async () => {
    const filler = `# ${'x'.repeat(1000)}\n`.repeat(1100);
    await refusedClearly('1 MB jobs file', `${filler}jobs:\n  - name: triage\n    type: nonsense\n`);
  });

  test('a YAML bomb (billion laughs with anchors and aliases)', async () => {
    const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 10; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    await refusedClearly('YAML bomb', `${lines.join('\n')}\njobs: *j\n`);
  });

  test('deeply nested YAML', async () => {
    await refusedClearly('deeply nested YAML', `jobs: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`);
  });

  test('a custom job module climbing out to /etc/passwd was imported and its first line logged: now refused by the jobs file check, the file never read', async () => {
    const out = await refusedClearly('path traversal in a custom job path', 'jobs:\n  - name: custom\n    module: ../../../../../../../../etc/passwd\n    schedule: "0 * * * *"\n', 'traversal.yaml', 'custom');
    assert.ok(!/root:x?:0:0/.test(out.stdout + out.stderr), 'the file it names is never shown');
    assert.match(out.stderr, /traversal\.yaml:3 jobs\[0\]\.module: module "\.\.\/.*etc\/passwd" is not a JavaScript or TypeScript file/);
  });

  test('a non-loopback HOST without ADMIN_PASSWORD: start refuses, naming the fix', async () => {
    const port = await freePort();
    for (const host of ['0.0.0.0', '::', '192.0.2.10']) {
      const out = await cli(['start'], { ...h.env, HOST: host, PORT: String(port) }, h.dir, { timeoutMs: 60_000 });
      refused(`start with HOST=${host} and no ADMIN_PASSWORD`, out.code === 1 && /ADMIN_PASSWORD/.test(out.stderr));
    }
  });
});

const CHROMIUM = '/usr/bin/chromium';

describe('XSS through every field the dashboard shows, checked in Chromium: no script runs, no element is injected', { skip: !existsSync(CHROMIUM) ? 'no /usr/bin/chromium (apt-get install -y chromium)' : false }, () => {
  let agent: Awaited<ReturnType<typeof startAgentServer>>;
  let browser: Browser;
  before(async () => {
    agent = await startAgentServer();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  });
  after(async () => {
    await browser?.close();
    await agent?.close();
  });

  const PAYLOADS = ['<script>window.__xss=(window.__xss||0)+1</script>', '<img src=x onerror="window.__xss=(window.__xss||0)+1">', '"><svg onload="window.__xss=(window.__xss||0)+1">', "'-alert(1)-'"];
  const hostile = PAYLOADS.join(' ');

  test('mail subject and sender, calendar subject and location, the notice, and a callback error, on every page that shows them', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    // Sign in as a person does.
    await page.goto(`${agent.url}/auth/signin`);
    await page.getByLabel(/email|user/i).fill(ALICE);
    await page.getByLabel(/password/i).fill('sandbox');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.pathname === '/');
    // Hostile data in what the jobs read and report.
    for (const p of PAYLOADS) {
      agent.sandbox.admin.deliver(ALICE, { subject: `${p} urgent invoice`, from: { name: p, address: 'mallory@news.example.com' }, body: p, bodyContentType: 'html' });
    }
    const start = new Date(Date.now() + 3600_000);
    agent.sandbox.admin.addEvent(ALICE, { subject: `${hostile} meeting`, location: hostile, start: start.toISOString(), end: new Date(start.getTime() + 1800_000).toISOString(), organizer: 'mallory@contoso.test' } as never);
    for (const button of await page.getByRole('button', { name: 'Run now' }).all()) {
      await button.click();
      await page.waitForLoadState('load');
    }
    const injected = async (where: string) => {
      const found = await page.evaluate(() => ({
        ran: (window as unknown as { __xss?: number }).__xss ?? 0,
        elements: document.querySelectorAll('img[src="x"], svg[onload], [onerror], [onload], script:not([src])').length,
      }));
      refused(`XSS on ${where}`, found.ran === 0 && found.elements === 0);
    };
    await page.goto(agent.url);
    assert.match(await page.textContent('body') ?? '', /urgent invoice/, 'the hostile subjects are on the page, as text');
    await injected('the dashboard (recent actions)');
    for (const name of ['triage', 'agenda']) {
      await page.goto(`${agent.url}/?job=${name}&notice=${encodeURIComponent(hostile)}`);
      await injected(`the dashboard of ${name} with a hostile notice`);
    }
    // A callback error of a started sign-in.
    await page.goto(`${agent.url}/auth/signin`);
    const state = new URL(page.url()).searchParams.get('state') ?? '';
    await page.goto(`${agent.url}/auth/callback?error=${encodeURIComponent(hostile)}&error_description=${encodeURIComponent(hostile)}&state=${encodeURIComponent(state)}`);
    await injected('the sign-in error page');
    await page.goto(`${agent.url}/${encodeURIComponent(hostile)}`);
    await injected('the not-found page');
    assert.deepEqual(dialogs, [], 'no dialog was opened by a script');
    await context.close();
  });
});

after(() => {
  if (tried.length === 0) return;
  writeFigures({
    area: 'attacks', cases: tried.length, injected: tried.length, survived: tried.filter((t) => t.refused).length, lost: 0, doubled: 0,
    leaked: tried.filter((t) => !t.refused).length, notes: { attacks: tried.map((t) => t.attack) },
  });
});
