// The host's zone must never leak into the schedules: the agent runs here in a zone unlike UTC and the mailboxes'.
process.env.TZ ??= 'America/New_York';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import supertest from 'supertest';
import { startServer } from '../../src/cli/server.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createFetch } from '../../src/config/transport.ts';
import { SANDBOX_CLIENT_SECRET, SANDBOX_CONFIDENTIAL_CLIENT_ID, SANDBOX_TENANT_ID, startSandbox } from '../../src/sandbox/index.ts';
import { logCapture, signIn, type Harness } from '../helpers/harness.ts';
import { freePort, startAgentServer } from '../helpers/server.ts';

/** One daily job at 07:00, with or without the jobs file's `timezone:`. */
function jobsFile(timezone?: string): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'ma-tz-')), 'agent.config.yaml');
  writeFileSync(file, `${timezone ? `timezone: ${timezone}\n` : ''}jobs:
  - name: agenda
    type: agenda-digest
    schedule: "0 7 * * *"
`);
  return file;
}

type Server = Awaited<ReturnType<typeof startAgentServer>>;
interface ZoneStatus {
  timezone: { name: string; source: string; reason?: string };
  jobs: { name: string; nextRun: string | null }[];
}

/** Signs in at the running agent as a browser would. */
async function signInAt(srv: Server, user: string) {
  const h = { http: supertest.agent(srv.url), fetch: createFetch({ origins: [srv.sandbox.url], caPem: srv.sandbox.caPem }), env: srv.env } as unknown as Harness;
  const { response } = await signIn(h, user);
  assert.equal(response.status, 303, response.text);
}

/** GET /api/status until `done` holds (the agent checks the zone every few seconds and right after start). */
async function statusWhen(srv: Server, done: (s: ZoneStatus) => boolean): Promise<ZoneStatus> {
  let last: ZoneStatus | undefined;
  for (let i = 0; i < 100; i++) {
    last = (await supertest(srv.url).get('/api/status').expect(200)).body as ZoneStatus;
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`status never showed the expected zone: ${JSON.stringify(last?.timezone)}`);
}

const localTime = (iso: string | null, zone: string) =>
  new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso!));

describe('scheduled jobs run in the mailbox\'s own time zone unless the jobs file names one (never the host\'s)', () => {
  test('the agent process runs in a zone other than UTC', () => {
    assert.notEqual(new Date('2026-12-01T12:00:00Z').getTimezoneOffset(), 0, `TZ=${process.env.TZ}`);
  });

  describe('no timezone: in the jobs file; bob\'s mailbox is in "Pacific Standard Time"', () => {
    let srv: Server;
    before(async () => {
      srv = await startAgentServer({ AGENT_CONFIG: jobsFile() });
    });
    after(() => srv.close());

    test('before anyone signs in: UTC, and status says why', async () => {
      const s = (await supertest(srv.url).get('/api/status').expect(200)).body as ZoneStatus;
      assert.equal(s.timezone.name, 'UTC');
      assert.equal(s.timezone.source, 'utc-fallback');
      assert.match(s.timezone.reason!, /not known yet/);
      assert.equal(localTime(s.jobs[0]!.nextRun, 'UTC'), '07:00');
    });

    test('after the sign-in, 0 7 * * * fires at 07:00 in Los Angeles; status, the dashboard and the scheduler agree', async () => {
      await signInAt(srv, 'bob@contoso.test');
      const s = await statusWhen(srv, (x) => x.timezone.source === 'mailbox');
      assert.equal(s.timezone.name, 'America/Los_Angeles');
      assert.equal(localTime(s.jobs[0]!.nextRun, 'America/Los_Angeles'), '07:00');
      assert.notEqual(localTime(s.jobs[0]!.nextRun, 'America/New_York'), '07:00', 'not the host\'s zone');
      const asked = srv.sandbox.admin.graphRequests().filter((g) => /mailboxSettings/.test(g.path));
      assert.ok(asked.length >= 1 && asked.every((g) => g.status === 200), 'the zone came from Graph');
      const html = (await supertest(srv.url).get('/').expect(200)).text;
      const shown = /data-testid="next-run-local"[^>]*>([^<]*)</.exec(html)?.[1];
      assert.match(shown ?? '', / 07:00 America\/Los_Angeles$/, html.slice(html.indexOf('id="jobs"'), html.indexOf('id="jobs"') + 1500));
    });
  });

  describe('timezone: Asia/Tokyo in the jobs file', () => {
    let srv: Server;
    before(async () => {
      srv = await startAgentServer({ AGENT_CONFIG: jobsFile('Asia/Tokyo') });
      await signInAt(srv, 'bob@contoso.test');
    });
    after(() => srv.close());

    test('0 7 * * * fires at 07:00 Tokyo (22:00 UTC), whatever the mailbox says', async () => {
      const s = (await supertest(srv.url).get('/api/status').expect(200)).body as ZoneStatus;
      assert.deepEqual(s.timezone, { name: 'Asia/Tokyo', source: 'jobs-file' });
      assert.equal(s.jobs[0]!.nextRun!.slice(11, 16), '22:00');
      assert.equal(srv.sandbox.admin.graphRequests().filter((g) => /mailboxSettings/.test(g.path)).length, 0, 'the mailbox is not asked');
    });
  });

  describe('a personal account (carol@outlook.test): Graph refuses mailboxSettings', () => {
    let srv: Server;
    before(async () => {
      srv = await startAgentServer({ AGENT_CONFIG: jobsFile(), MS_TENANT: 'consumers' });
      await signInAt(srv, 'carol@outlook.test');
    });
    after(() => srv.close());

    test('UTC, with a warning in the log and the reason in status', async () => {
      const s = await statusWhen(srv, (x) => x.timezone.reason !== undefined && !/not known yet/.test(x.timezone.reason));
      assert.equal(s.timezone.name, 'UTC');
      assert.equal(s.timezone.source, 'utc-fallback');
      assert.match(s.timezone.reason!, /403.*timezone: in the jobs file/);
      assert.equal(localTime(s.jobs[0]!.nextRun, 'UTC'), '07:00');
      assert.ok(srv.logs.some((l) => /"level":"warn"/.test(l) && /refused the mailbox's settings/.test(l)), 'a warning was logged');
      const refused = srv.sandbox.admin.graphRequests().filter((g) => /mailboxSettings/.test(g.path));
      assert.equal(refused.at(-1)?.status, 403, 'the sandbox refused it for real');
    });
  });

  describe('app-only (MAILBOX=alice@contoso.test, "W. Europe Standard Time"), confined by an access policy', () => {
    let stop: () => Promise<void>;
    let url: string;
    let sandbox: Awaited<ReturnType<typeof startSandbox>>;
    before(async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'ma-tz-app-'));
      sandbox = await startSandbox({ dataDir: path.join(dir, 'sandbox'), port: 0 });
      sandbox.admin.setAccessPolicy(SANDBOX_CONFIDENTIAL_CLIENT_ID, ['alice@contoso.test']);
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      const config = loadConfig({
        DATA_DIR: dir, STORE_URL: `sqlite://${path.join(dir, 'agent.sqlite')}`, AGENT_CONFIG: jobsFile(), PORT: String(port),
        SANDBOX_PORT: new URL(sandbox.url).port, AUTH_MODE: 'app-only', MS_CLIENT_ID: SANDBOX_CONFIDENTIAL_CLIENT_ID,
        MS_CLIENT_SECRET: SANDBOX_CLIENT_SECRET, MS_TENANT: SANDBOX_TENANT_ID, MS_AUTHORITY_HOST: sandbox.url, MS_GRAPH_URL: sandbox.url,
        MAILBOX: 'alice@contoso.test', CANARY_MAILBOX: 'bob@contoso.test',
      }, { envFile: false, cwd: dir });
      ({ stop } = await startServer(config, logCapture().log, { installSignalHandlers: false }));
    });
    after(async () => {
      await stop();
      await sandbox.close();
    });

    test('once confinement is proven, the zone is read from MAILBOX\'s settings: 07:00 Berlin', async () => {
      const s = await statusWhen({ url } as Server, (x) => x.timezone.source === 'mailbox');
      assert.equal(s.timezone.name, 'Europe/Berlin');
      assert.equal(localTime(s.jobs[0]!.nextRun, 'Europe/Berlin'), '07:00');
      const asked = sandbox.admin.graphRequests().filter((g) => /mailboxSettings/.test(g.path));
      assert.ok(asked.length >= 1 && asked.every((g) => g.status === 200 && g.path.includes('alice')), JSON.stringify(asked.map((g) => g.path)));
    });
  });
});
