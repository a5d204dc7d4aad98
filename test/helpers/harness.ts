import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import supertest from 'supertest';
import { buildStatus, createRuntime, type Runtime } from '../../src/cli/runtime.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/config/logger.ts';
import { createFetch, type FetchLike } from '../../src/config/transport.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { createApp } from '../../src/web/index.ts';

export const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** Captures log lines so tests can assert on them (and on what they never contain). */
export function logCapture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, log: createLogger({ level: 'debug', destination: destination as never }) };
}

export interface Harness {
  dir: string;
  env: Record<string, string>;
  sandbox: Sandbox;
  rt: Runtime;
  app: ReturnType<typeof createApp>;
  http: supertest.Agent;
  fetch: FetchLike;
  logs: string[];
  /** Moves the agent's clock forward (token expiry). */
  advance(ms: number): void;
  close(): Promise<void>;
}

/**
 * A sandbox on an ephemeral port plus the agent wired to it, state in a temp dir.
 * The web app is driven in-process with supertest under the Host of the redirect URI.
 */
export async function startHarness(options: { env?: Record<string, string>; jobsFile?: string; sandboxOptions?: Record<string, unknown> } = {}): Promise<Harness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-it-'));
  const sandbox = await startSandbox({ dataDir: path.join(dir, 'sandbox'), port: 0, ...options.sandboxOptions });
  const jobsPath = path.join(dir, 'agent.config.yaml');
  writeFileSync(jobsPath, options.jobsFile ?? (await import('node:fs')).readFileSync(path.join(REPO, 'agent.config.yaml'), 'utf8'));
  const env: Record<string, string> = {
    DATA_DIR: dir,
    STORE_URL: `sqlite://${path.join(dir, 'agent.sqlite')}`,
    AGENT_CONFIG: jobsPath,
    SANDBOX_PORT: String(new URL(sandbox.url).port),
    LOG_LEVEL: 'debug',
    ...options.env,
  };
  const config = loadConfig(env, { envFile: false, cwd: dir });
  const { lines, log } = logCapture();
  let offset = 0;
  const rt = await createRuntime(config, { log, sandbox: 'shared', now: () => Date.now() + offset });
  const app = createApp({ auth: rt.auth, runner: rt.runner, status: () => buildStatus(rt), log, redirectUri: config.redirectUri, adminPassword: config.adminPassword });
  return {
    dir, env, sandbox, rt, app, http: supertest.agent(app), logs: lines,
    fetch: createFetch({ origins: [sandbox.url], caPem: sandbox.caPem }),
    advance(ms) {
      offset += ms;
    },
    async close() {
      await rt.close();
      await sandbox.close();
    },
  };
}

/** The Host header the browser would send to the redirect URI's origin. */
export function hostOf(h: Harness): string {
  return new URL(h.env.MS_REDIRECT_URI ?? 'http://localhost:3000/auth/callback').host;
}

/**
 * Drives the sign-in the way a browser does: /auth/signin → the sandbox's page → post the form → /auth/callback.
 * Returns the final agent response and the callback URL that was used.
 */
export async function signIn(h: Harness, user = 'alice@contoso.test', password = 'sandbox') {
  const { callback, authorizeUrl } = await authorizeAt(h, { username: user, password, action: 'signin' });
  const response = await h.http.get(callback.pathname + callback.search).set('Host', hostOf(h));
  return { response, callback, authorizeUrl };
}

/**
 * Starts a sign-in at the agent and answers the sandbox's sign-in form with `answer` (username, password,
 * action=signin|cancel); returns the callback URL the identity provider redirects the browser to.
 */
export async function authorizeAt(h: Harness, answer: Record<string, string>): Promise<{ callback: URL; authorizeUrl: string }> {
  const start = await h.http.get('/auth/signin').set('Host', hostOf(h)).expect(302);
  const authorizeUrl = start.headers.location as string;
  const page = await h.fetch(authorizeUrl);
  const form = parseForm(await page.text());
  const posted = await h.fetch(new URL(form.action, authorizeUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...form.fields, ...answer }).toString(),
    redirect: 'manual',
  });
  const location = posted.headers.get('location');
  if (posted.status !== 302 || !location) throw new Error(`sign-in form answered ${posted.status}: ${(await posted.text()).slice(0, 500)}`);
  return { callback: new URL(location), authorizeUrl };
}

export function parseForm(html: string): { action: string; fields: Record<string, string> } {
  const action = /<form[^>]*action="([^"]*)"/.exec(html)?.[1];
  if (!action) throw new Error(`no form in page: ${html.slice(0, 300)}`);
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]*)"[^>]*value="([^"]*)"/g)) fields[decode(m[1]!)] = decode(m[2]!);
  return { action: decode(action), fields };
}

function decode(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}
