import { createHash, timingSafeEqual } from 'node:crypto';
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
import type { DelegatedAuth } from '../auth/index.ts';
import type { JobRunner, JobRunResult } from '../jobs/index.ts';
import type { Status } from '../cli/runtime.ts';

const VIEWS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../views');
const FLOW_COOKIE = 'ma_signin';

export interface AppDeps {
  auth: DelegatedAuth;
  runner: JobRunner;
  status: () => Promise<Status>;
  log: Logger;
  redirectUri: URL;
  adminPassword?: string;
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
  app.disable('x-powered-by');
  app.set('trust proxy', false);

  app.use((req, res, next) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on our own form posts.
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' https: http://localhost:* http://127.0.0.1:*; frame-ancestors 'none'; base-uri 'none'");
    res.setHeader('Cache-Control', 'no-store');
    next();
  });

  app.get('/healthz', (_req, res) => void res.json({ ok: true }));
  app.use('/static', express.static(path.join(VIEWS, 'static'), { fallthrough: false, maxAge: '1h' }));

  if (deps.adminPassword) app.use(basicAuth(deps.adminPassword));
  app.use(sameOriginPosts);

  app.get('/', async (req, res) => {
    const status = await deps.status();
    const ran = typeof req.query.ran === 'string' ? results.get(req.query.ran) : undefined;
    res.type('html').send(eta.render('dashboard', { status, ran, cronInWords, notice: typeof req.query.notice === 'string' ? req.query.notice : undefined }));
  });

  app.get('/auth/signin', async (req, res) => {
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
    const pending = flows.take(readCookie(req, FLOW_COOKIE));
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

  app.post('/auth/signout', express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
    const account = await deps.auth.signout();
    const message = `Signed out${account ? ` ${account.upn}` : ''}: every token is erased. To revoke the app's access at Microsoft too, remove it at https://myapps.microsoft.com (or https://account.live.com/consent/Manage for a personal account).`;
    if (wantsJson(req)) return void res.json({ ok: true, message });
    res.redirect(303, `/?notice=${encodeURIComponent(message)}`);
  });

  app.get('/api/status', async (_req, res) => void res.json(await deps.status()));

  app.post('/api/jobs/:name/run', async (req, res) => {
    const dryRun = ['1', 'true', 'yes'].includes(String(req.query.dryRun ?? '').toLowerCase());
    res.json(await deps.runner.run(String(req.params.name), { dryRun }));
  });

  // The dashboard's buttons: a form post that shows the result on the page.
  app.post('/jobs/:name/run', express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
    const dryRun = req.body?.dryRun === '1';
    const result = await deps.runner.run(String(req.params.name), { dryRun });
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

function wantsJson(req: Request): boolean {
  return req.path.startsWith('/api/') || (req.accepts(['html', 'json']) === 'json');
}

function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
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

function basicAuth(password: string) {
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const [scheme, value] = header.split(' ');
    const given = scheme?.toLowerCase() === 'basic' && value ? Buffer.from(value, 'base64').toString('utf8').split(':').slice(1).join(':') : undefined;
    if (given !== undefined && timingSafeEqualString(given, password)) return next();
    res.setHeader('WWW-Authenticate', 'Basic realm="mailbox-agent", charset="UTF-8"');
    res.status(401).type('text').send('The agent is password-protected (ADMIN_PASSWORD).');
  };
}

function timingSafeEqualString(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}
