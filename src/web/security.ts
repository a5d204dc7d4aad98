import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import cookieParser from 'cookie-parser';
import { doubleCsrf } from 'csrf-csrf';
import { rateLimit } from 'express-rate-limit';
import helmet from 'helmet';
import { AgentError } from '../config/errors.ts';

export const SESSION_COOKIE = 'ma_session';
export const BROWSER_COOKIE = 'ma_browser';
const CSRF_COOKIE = 'ma_csrf';
const SESSION_TTL_MS = 12 * 3600_000;

export interface UiSecurityOptions {
  /** ADMIN_PASSWORD: when set, every page and API needs a login (browser) or the password as a bearer (API clients). */
  password?: string;
  /** Signs session cookies and CSRF tokens; derive it from the token key so sessions survive a restart. */
  secret: Buffer;
  now?: () => number;
  /** Login attempts allowed per 15 minutes per client address. */
  loginAttempts?: number;
}

/**
 * The UI's security in one place: headers (helmet), a browser cookie for CSRF binding, double-submit CSRF on
 * browser POSTs, login sessions when a password is set, and rate limits.
 * Browsers mark every request a page makes with Sec-Fetch-Site, and cross-origin POSTs with Origin; a POST
 * with neither does not come from a page (the CLI, curl, a script), so no other site can have forged it:
 * it is exempt from the CSRF token, but it still needs the password when one is set.
 */
export function createUiSecurity(options: UiSecurityOptions) {
  const now = options.now ?? Date.now;
  const secretHex = options.secret.toString('hex');
  const cookieSecret = createHmac('sha256', options.secret).update('cookies').digest('hex');

  const headers = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
    },
    // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on our own form posts.
    referrerPolicy: { policy: 'same-origin' },
    strictTransportSecurity: false,
  });

  const isBrowser = (req: Request) => Boolean(req.get('origin') || req.get('sec-fetch-site'));
  const secure = (req: Request) => req.secure;

  const { doubleCsrfProtection, generateCsrfToken } = doubleCsrf({
    getSecret: () => secretHex,
    getSessionIdentifier: (req) => String(req.cookies?.[BROWSER_COOKIE] ?? ''),
    cookieName: CSRF_COOKIE,
    cookieOptions: { sameSite: 'lax', path: '/', secure: false, httpOnly: true },
    getCsrfTokenFromRequest: (req) => (req.body as Record<string, string> | undefined)?._csrf ?? req.get('x-csrf-token'),
    skipCsrfProtection: (req) => !isBrowser(req),
    errorConfig: { statusCode: 403, message: 'The form has expired or did not come from this dashboard.', code: 'CSRF_INVALID' },
  });

  /** A page with a form gives its browser a random id cookie: CSRF tokens are bound to it. */
  const ensureBrowserId = (req: Request, res: Response) => {
    if (!req.cookies?.[BROWSER_COOKIE]) {
      const id = randomBytes(18).toString('base64url');
      req.cookies = { ...req.cookies, [BROWSER_COOKIE]: id };
      res.cookie(BROWSER_COOKIE, id, { httpOnly: true, sameSite: 'lax', secure: secure(req), path: '/' });
    }
  };

  const csrf: RequestHandler = (req, res, next) => {
    doubleCsrfProtection(req, res, (error?: unknown) => {
      if (error) return next(new AgentError('USAGE', 'The form has expired or did not come from this dashboard.', { status: 403, remedy: 'Reload the page and try again.' }));
      next();
    });
  };

  const csrfToken = (req: Request, res: Response) => {
    ensureBrowserId(req, res);
    return generateCsrfToken(req, res, { cookieOptions: { secure: secure(req) } });
  };

  const passwordMatches = (given: string) => Boolean(options.password) && safeEqual(given, options.password!);

  const sessionValue = (expires: number) => {
    const mac = createHmac('sha256', options.secret).update(`session:${expires}`).digest('base64url');
    return `${expires}.${mac}`;
  };
  const validSession = (value: unknown) => {
    if (typeof value !== 'string') return false;
    const [exp] = value.split('.');
    const expires = Number(exp);
    return Number.isFinite(expires) && expires > now() && safeEqual(value, sessionValue(expires));
  };

  /** With a password: a session cookie (browser) or the password as bearer/basic (API clients). */
  const requireLogin: RequestHandler = (req, res, next) => {
    if (!options.password) return next();
    if (validSession(req.cookies?.[SESSION_COOKIE])) return next();
    const header = req.get('authorization') ?? '';
    const scheme = header.split(' ')[0];
    const value = header.slice((scheme?.length ?? 0) + 1);
    if (scheme?.toLowerCase() === 'bearer' && passwordMatches(value)) return next();
    if (scheme?.toLowerCase() === 'basic' && passwordMatches(Buffer.from(value, 'base64').toString('utf8').split(':').slice(1).join(':'))) return next();
    if (req.method === 'GET' && !req.path.startsWith('/api/') && (req.get('accept') ?? '').includes('text/html')) {
      return res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
    }
    res.setHeader('WWW-Authenticate', 'Bearer realm="mailbox-agent"');
    next(new AgentError('USAGE', 'The agent is password-protected.', { status: 401, remedy: 'Sign in at /login, or send the ADMIN_PASSWORD as a bearer token.' }));
  };

  const login = (req: Request, res: Response): boolean => {
    const given = String((req.body as Record<string, string> | undefined)?.password ?? '');
    if (!passwordMatches(given)) {
      res.locals.loginFailed = true;
      return false;
    }
    res.cookie(SESSION_COOKIE, sessionValue(now() + SESSION_TTL_MS), { httpOnly: true, sameSite: 'lax', secure: secure(req), path: '/', maxAge: SESSION_TTL_MS });
    return true;
  };
  const logout = (res: Response) => res.clearCookie(SESSION_COOKIE, { path: '/' });

  const loginLimiter = rateLimit({
    windowMs: 15 * 60_000,
    limit: options.loginAttempts ?? 10,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    skipSuccessfulRequests: true,
    // A failed login answers 303 back to the form, so success is the login's outcome, not the status.
    requestWasSuccessful: (_req, res) => !res.locals.loginFailed,
    handler: (_req, _res, next) => next(new AgentError('USAGE', 'Too many login attempts.', { status: 429, remedy: 'Wait 15 minutes and try again.' })),
  });
  const authLimiter = rateLimit({
    windowMs: 60_000,
    limit: 30,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (_req, _res, next) => next(new AgentError('USAGE', 'Too many sign-in requests.', { status: 429, remedy: 'Wait a minute and try again.' })),
  });

  return {
    headers,
    cookies: cookieParser(cookieSecret),
    csrf,
    csrfToken,
    requireLogin,
    login,
    logout,
    loginLimiter,
    authLimiter,
    passwordProtected: Boolean(options.password),
  };
}

function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

export type UiSecurity = ReturnType<typeof createUiSecurity>;
export type { NextFunction };
