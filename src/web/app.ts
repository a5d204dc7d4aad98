import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Eta } from 'eta';
import { AgentError, describeError } from '../config/errors.ts';
import { isLoopback } from '../config/index.ts';
import type { Logger } from '../config/logger.ts';
import { redactText } from '../config/logger.ts';
import { cronInWords } from './cron-words.ts';
import { SigninFlows } from './signin-flows.ts';
import { createUiSecurity } from './security.ts';
import type { DelegatedAuth } from '../auth/index.ts';
import type { JobRunner, JobRunResult } from '../jobs/index.ts';
import type { Status } from '../cli/runtime.ts';
import type { Notice } from '../notify/index.ts';

/** views/ at the package root: two levels up from src/web, three from the bundle's files (scripts/build.mjs puts each in dist/src/<dir>/). */
const VIEWS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), import.meta.url.includes('/dist/src/') ? '../../../views' : '../../views');
const FLOW_COOKIE = 'ma_signin';

export interface AppDeps {
  auth: DelegatedAuth;
  runner: JobRunner;
  status: () => Promise<Status>;
  /** Conditions a person has been told about and that still hold (the notifier's): the dashboard shows them too. */
  notices?: () => Promise<Notice[]>;
  log: Logger;
  redirectUri: URL;
  adminPassword?: string;
  /** Signs session cookies and CSRF tokens; random per process when not given. */
  secret?: Buffer;
  /** AUTH_MODE=app-only: there is no sign-in. */
  appOnly?: boolean;
  /** Behind a TLS-terminating reverse proxy: trust X-Forwarded-Proto so cookies get `Secure`. */
  trustProxy?: boolean;
  /** Shutdown: a run started here stops at its next safe point (`stop`), or is aborted (`abort`), like a scheduled one. */
  runSignals?: { stop: AbortSignal; abort: AbortSignal };
  now?: () => number;
}

/**
 * The web surface, built without listening: `/`, sign-in, status and job API.
 * Example: `const app = createApp(deps); app.listen(3000, '127.0.0.1')`, or `supertest(createApp(deps))`.
 */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  const eta = new Eta({ views: VIEWS, autoEscape: true, cache: true });
  const flows = new SigninFlows(undefined, deps.now);
  const results = new Map<string, JobRunResult>();
  const runSignals = deps.runSignals ? { stop: deps.runSignals.stop, signal: deps.runSignals.abort } : {};
  const security = createUiSecurity({ password: deps.adminPassword, secret: deps.secret ?? randomBytes(32), now: deps.now });
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustProxy ? 1 : false);

  app.use(security.headers);
  app.use((_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  app.get('/healthz', (_req, res) => void res.json({ ok: true }));
  app.use('/static', express.static(path.join(VIEWS, 'static'), { fallthrough: false, maxAge: '1h' }));
  app.use(security.cookies);
  app.use(express.urlencoded({ extended: false, limit: '8kb' }));
  app.use(sameOriginPosts);
  app.use(security.csrf);

  app.get('/login', (req, res) => {
    if (!security.passwordProtected) return res.redirect(303, '/');
    res.type('html').send(eta.render('login', { csrf: security.csrfToken(req, res), next: safeNext(req.query.next), failed: req.query.failed === '1' }));
  });
  app.post('/login', security.loginLimiter, (req, res) => {
    const next = safeNext((req.body as Record<string, string>).next);
    if (!security.login(req, res)) {
      deps.log.warn({ ip: req.ip }, 'failed login to the dashboard');
      return res.redirect(303, `/login?failed=1&next=${encodeURIComponent(next)}`);
    }
    res.redirect(303, next);
  });
  app.post('/logout', (_req, res) => {
    security.logout(res);
    res.redirect(303, '/login');
  });

  app.use(security.requireLogin);
  app.use('/auth', security.authLimiter);

  app.get('/', async (req, res) => {
    const job = typeof req.query.job === 'string' && req.query.job ? req.query.job : undefined;
    const [status, actions, notices, snoozed] = await Promise.all([deps.status(), deps.runner.recentActions({ job, limit: 50 }), deps.notices?.() ?? [], deps.runner.snoozed?.() ?? []]);
    const ran = typeof req.query.ran === 'string' ? results.get(req.query.ran) : undefined;
    res.type('html').send(
      eta.render('dashboard', {
        status, ran, actions, actionsJob: job, cronInWords, snoozed, failingJobs: notices.filter((n) => n.event === 'job-failing'), csrf: security.csrfToken(req, res), passwordProtected: security.passwordProtected,
        notice: typeof req.query.notice === 'string' ? req.query.notice : undefined,
      }),
    );
  });

  app.get('/auth/signin', async (req, res) => {
    if (deps.appOnly) {
      throw new AgentError('USAGE', 'This agent runs app-only (AUTH_MODE=app-only): nobody signs in; it uses the app\'s certificate or secret.', { status: 400, remedy: 'See the dashboard for the app and its confinement, or run mailbox-agent doctor.' });
    }
    // The state cookie must be set on the origin the identity provider redirects back to.
    const here = `${req.protocol}://${req.get('host')}`;
    if (here !== deps.redirectUri.origin && isLoopback(req.hostname) && isLoopback(deps.redirectUri.hostname)) {
      return res.redirect(302, `${deps.redirectUri.origin}/auth/signin`);
    }
    const { url, pending } = await deps.auth.startSignin();
    const id = flows.create(pending);
    res.cookie(FLOW_COOKIE, id, { httpOnly: true, sameSite: 'lax', secure: deps.redirectUri.protocol === 'https:', path: '/auth', maxAge: 10 * 60_000 });
    res.redirect(302, url);
  });

  const callbackPaths = [...new Set(['/auth/callback', deps.redirectUri.pathname])];
  app.get(callbackPaths, async (req, res) => {
    const pending = flows.take(req.cookies?.[FLOW_COOKIE] as string | undefined);
    res.clearCookie(FLOW_COOKIE, { path: '/auth' });
    if (!pending) {
      throw new AgentError('SIGNIN_STATE_INVALID', 'This sign-in response does not belong to a sign-in started in this browser, or it was already used.', {
        remedy: 'Start the sign-in again from the dashboard.',
        status: 400,
      });
    }
    const callbackUrl = new URL(req.originalUrl, deps.redirectUri.origin);
    const account = await deps.auth.completeSignin(callbackUrl, pending);
    res.redirect(303, `/?notice=${encodeURIComponent(`Signed in as ${account.upn}.`)}`);
  });

  app.post('/auth/signout', async (req, res) => {
    const account = await deps.auth.signout();
    const message = `Signed out${account ? ` ${account.upn}` : ''}: every token is erased. To revoke the app's access at Microsoft too, remove it at https://myapps.microsoft.com (or https://account.live.com/consent/Manage for a personal account).`;
    if (wantsJson(req)) return void res.json({ ok: true, message });
    res.redirect(303, `/?notice=${encodeURIComponent(message)}`);
  });

  app.get('/api/status', async (_req, res) => void res.json(await deps.status()));

  app.post('/api/jobs/:name/run', async (req, res) => {
    const dryRun = ['1', 'true', 'yes'].includes(String(req.query.dryRun ?? '').toLowerCase());
    res.json(await deps.runner.run(String(req.params.name), { dryRun, ...runSignals }));
  });

  // The dashboard's buttons: a form post that shows the result on the page.
  app.post('/jobs/:name/run', async (req, res) => {
    const dryRun = (req.body as Record<string, string> | undefined)?.dryRun === '1';
    const result = await deps.runner.run(String(req.params.name), { dryRun, ...runSignals });
    results.set(result.job, result);
    res.redirect(303, `/?ran=${encodeURIComponent(result.job)}#jobs`);
  });

  app.use((req, _res, next) => next(new AgentError('JOB_NOT_FOUND', `Nothing here: ${req.method} ${req.path}`, { status: 404 })));

  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const agentError = error instanceof AgentError ? error : undefined;
    const status = agentError?.status ?? ((error as { status?: number }).status && (error as { status: number }).status < 500 ? (error as { status: number }).status : 500);
    if (status >= 500) deps.log.error({ err: error, path: req.path }, 'request failed');
    else deps.log.info({ code: agentError?.code, path: req.path, status }, redactText(describeError(error)));
    const message = agentError?.expose !== false && (agentError || status < 500) ? redactText(agentError?.message ?? (error as Error).message) : 'Something went wrong inside the agent; the log has the details.';
    const body = { error: { code: agentError?.code ?? (status < 500 ? 'BAD_REQUEST' : 'INTERNAL'), message, ...(agentError?.remedy ? { remedy: agentError.remedy } : {}) } };
    res.status(status);
    if (wantsJson(req)) return void res.json(body);
    res.type('html').send(eta.render('error', { status, ...body.error }));
  });
  return app;
}

/** Only a local path may follow a login: never an absolute URL (open redirect). */
function safeNext(value: unknown): string {
  return typeof value === 'string' && value.startsWith('/') && !value.startsWith('//') && !value.startsWith('/\\') ? value : '/';
}

function wantsJson(req: Request): boolean {
  return req.path.startsWith('/api/') || (req.accepts(['html', 'json']) === 'json');
}


/**
 * Refuses cross-site POSTs: a page elsewhere must not make the agent act or sign out.
 * Browsers send Sec-Fetch-Site; older ones only Origin. Clients that send neither (the CLI, curl) are not browsers.
 */
function sameOriginPosts(req: Request, _res: Response, next: NextFunction): void {
  if (req.method !== 'POST') return next();
  const site = req.get('sec-fetch-site');
  const origin = req.get('origin');
  let crossSite: boolean;
  if (site) crossSite = site !== 'same-origin' && site !== 'none';
  else if (origin) crossSite = origin === 'null' || new URL(origin).host !== req.get('host');
  else crossSite = false;
  if (crossSite) {
    return next(new AgentError('USAGE', 'Cross-site request refused.', { status: 403, remedy: 'Use the dashboard or the CLI.' }));
  }
  next();
}
