import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import supertest from 'supertest';
import { hostOf, startHarness, type Harness } from '../helpers/harness.ts';

const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1];

describe('the dashboard without a password (loopback)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('security headers on every page', async () => {
    const res = await h.http.get('/').expect(200);
    assert.match(res.headers['content-security-policy'] ?? '', /default-src 'none'/);
    assert.match(res.headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-frame-options'], 'SAMEORIGIN');
    assert.equal(res.headers['referrer-policy'], 'same-origin');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['x-powered-by'], undefined);
  });

  test('a browser form POST needs the CSRF token of its own page', async () => {
    const browser = supertest.agent(h.app);
    const page = await browser.get('/').set('Host', hostOf(h)).expect(200);
    const token = csrfOf(page.text);
    assert.ok(token, 'the page carries a token');
    await browser.post('/jobs/triage/run').set('Host', hostOf(h)).set('Sec-Fetch-Site', 'same-origin').type('form').send({ dryRun: '1' }).expect(403);
    await browser.post('/jobs/triage/run').set('Host', hostOf(h)).set('Sec-Fetch-Site', 'same-origin').type('form').send({ dryRun: '1', _csrf: 'forged' }).expect(403);
    const other = supertest.agent(h.app);
    await other.get('/').set('Host', hostOf(h));
    await other.post('/jobs/triage/run').set('Host', hostOf(h)).set('Sec-Fetch-Site', 'same-origin').type('form').send({ dryRun: '1', _csrf: token }).expect(403, /did not come from this dashboard/);
    await browser.post('/jobs/triage/run').set('Host', hostOf(h)).set('Sec-Fetch-Site', 'same-origin').type('form').send({ dryRun: '1', _csrf: token }).expect(303);
  });

  test('cross-site requests are refused even with a token; scripts without browser headers need none', async () => {
    const browser = supertest.agent(h.app);
    const token = csrfOf((await browser.get('/').set('Host', hostOf(h))).text);
    await browser.post('/auth/signout').set('Host', hostOf(h)).set('Sec-Fetch-Site', 'cross-site').type('form').send({ _csrf: token }).expect(403);
    await browser.post('/auth/signout').set('Host', hostOf(h)).set('Origin', 'http://evil.example').type('form').send({ _csrf: token }).expect(403);
    await supertest(h.app).post('/api/jobs/triage/run?dryRun=1').expect(200);
  });

  test('sign-in routes are rate-limited', async () => {
    let limited = 0;
    for (let i = 0; i < 35; i++) {
      const res = await supertest(h.app).get('/auth/signin').set('Host', hostOf(h));
      if (res.status === 429) limited++;
    }
    assert.ok(limited > 0, 'the 31st request within a minute is refused');
  });

  test('values on the dashboard are escaped: a hostile subject shows as text', async () => {
    const r = h.sandbox.admin;
    void r;
    const html = (await h.http.get('/?notice=%3Cscript%3Ealert(1)%3C%2Fscript%3E').expect(200)).text;
    assert.ok(!html.includes('<script>alert(1)</script>'));
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  });
});

describe('the dashboard with ADMIN_PASSWORD', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { ADMIN_PASSWORD: 'correct horse battery', HOST: '0.0.0.0' } });
  });
  after(() => h.close());

  test('pages redirect to the login form; the API answers 401; /healthz stays open', async () => {
    const res = await supertest(h.app).get('/').set('Accept', 'text/html').expect(303);
    assert.equal(res.headers.location, '/login?next=%2F');
    await supertest(h.app).get('/api/status').expect(401);
    await supertest(h.app).post('/api/jobs/triage/run').expect(401);
    await supertest(h.app).get('/auth/signin').set('Accept', 'text/html').expect(303);
    await supertest(h.app).get('/healthz').expect(200);
  });

  test('API clients may send the password as a bearer token', async () => {
    const status = await supertest(h.app).get('/api/status').set('Authorization', 'Bearer correct horse battery').expect(200);
    assert.equal(status.body.state, 'signed-out');
    await supertest(h.app).get('/api/status').set('Authorization', 'Bearer wrong').expect(401);
  });

  test('the login form sets an HttpOnly, SameSite=Lax session cookie; a wrong password does not', async () => {
    const browser = supertest.agent(h.app);
    const form = await browser.get('/login?next=/%3Fjob%3Dtriage').expect(200);
    const token = csrfOf(form.text)!;
    assert.match(form.text, /name="next" value="\/\?job=triage"/);
    const wrong = await browser.post('/login').set('Sec-Fetch-Site', 'same-origin').type('form').send({ _csrf: token, password: 'nope', next: '/' }).expect(303);
    assert.match(wrong.headers.location!, /^\/login\?failed=1/);
    assert.ok(!String(wrong.headers['set-cookie'] ?? '').includes('ma_session'));
    const ok = await browser.post('/login').set('Sec-Fetch-Site', 'same-origin').type('form').send({ _csrf: token, password: 'correct horse battery', next: '//evil.example/' }).expect(303);
    assert.equal(ok.headers.location, '/', 'no open redirect');
    assert.match(String(ok.headers['set-cookie']), /ma_session=[^;]+;.*HttpOnly.*SameSite=Lax/);
    await browser.get('/').set('Accept', 'text/html').expect(200);
    await browser.get('/api/status').expect(200);
  });

  test('a restart keeps the dashboard session; a new ADMIN_PASSWORD ends it', async () => {
    const { createApp } = await import('../../src/web/index.ts');
    const { buildStatus, createRuntime } = await import('../../src/cli/runtime.ts');
    const appFor = (rt: typeof h.rt) => createApp({ auth: rt.auth, runner: rt.runner, status: () => buildStatus(rt), log: rt.log, redirectUri: rt.config.redirectUri, adminPassword: rt.config.adminPassword, secret: rt.uiSecret });
    const browser = supertest.agent(appFor(h.rt));
    const token = csrfOf((await browser.get('/login')).text)!;
    const ok = await browser.post('/login').set('Sec-Fetch-Site', 'same-origin').type('form').send({ _csrf: token, password: 'correct horse battery', next: '/' }).expect(303);
    const session = /ma_session=[^;]+/.exec(String(ok.headers['set-cookie']))![0];
    // A restart: a new process, the same data directory and .env.
    const restarted = await createRuntime(h.rt.config, { log: h.rt.log, sandbox: 'shared' });
    try {
      await supertest(appFor(restarted)).get('/api/status').set('Cookie', session).expect(200);
    } finally {
      await restarted.close();
    }
    const changed = await createRuntime({ ...h.rt.config, adminPassword: 'a new password' }, { log: h.rt.log, sandbox: 'shared' });
    try {
      await supertest(appFor(changed)).get('/api/status').set('Cookie', session).expect(401);
    } finally {
      await changed.close();
    }
  });

  test('behind an https proxy the cookie is Secure', async () => {
    const { createApp } = await import('../../src/web/index.ts');
    const { buildStatus } = await import('../../src/cli/runtime.ts');
    const app = createApp({ auth: h.rt.auth, runner: h.rt.runner, status: () => buildStatus(h.rt), log: h.rt.log, redirectUri: h.rt.config.redirectUri, adminPassword: 'pw', trustProxy: true });
    // A cookie jar keeps Secure cookies off plain http, so carry them by hand as the proxy's client would.
    const form = await supertest(app).get('/login').set('X-Forwarded-Proto', 'https');
    const cookies = (form.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; ');
    assert.match(String(form.headers['set-cookie']), /ma_csrf=[^;]+;.*Secure/);
    const token = csrfOf(form.text)!;
    const ok = await supertest(app).post('/login').set('Cookie', cookies).set('X-Forwarded-Proto', 'https').set('Sec-Fetch-Site', 'same-origin').type('form').send({ _csrf: token, password: 'pw', next: '/' }).expect(303);
    assert.match(String(ok.headers['set-cookie']), /ma_session=[^;]+;.*Secure/);
  });

  test('login attempts are rate-limited', async () => {
    const browser = supertest.agent(h.app);
    const token = csrfOf((await browser.get('/login')).text)!;
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      statuses.push((await browser.post('/login').set('Sec-Fetch-Site', 'same-origin').type('form').send({ _csrf: token, password: `guess-${i}` })).status);
    }
    assert.ok(statuses.includes(429), `statuses: ${statuses.join(',')}`);
    const correct = await browser.post('/login').set('Sec-Fetch-Site', 'same-origin').type('form').send({ _csrf: token, password: 'correct horse battery' });
    assert.equal(correct.status, 429, 'even the right password waits once the limit is hit');
  });
});
