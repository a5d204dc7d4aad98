import { createHash, createPublicKey, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import { grantedRolesOf, secretExpired } from './access-control.ts';
import { certificateDerBase64 } from './certificates.ts';
import { verifyClientAssertion } from './client-assertion.ts';
import { pushLog, type SandboxContext } from './context.ts';
import {
  findApp, findUser, GRAPH_APP_ID, GRAPH_RESOURCE, isConsumer, MSA_TENANT_ID, resolveTenant,
  SANDBOX_TENANT_ID, SANDBOX_USERS, type AppRegistration, type RedirectPlatform, type SandboxUser, type TenantSegment,
} from './directory.ts';
import { AADSTS, entraErrorBody, entraTimestamp, TokenEndpointError } from './entra-errors.ts';
import { signJwt } from './jwt.ts';
import { renderDeviceCodePage, renderErrorPage, renderMessagePage, renderSignInPage } from './sign-in-page.ts';
import { audienceRefusal, registeredRedirect, registrationOf, userFits, type EffectiveRegistration } from './registration.ts';
import { hashToken, type Grant } from './state.ts';

/**
 * Entra ID v2 authority emulation: discovery, JWKS, authorize + sign-in page,
 * token (authorization_code + PKCE, refresh_token with rotation,
 * client_credentials, device_code), devicecode, logout.
 */

const OIDC_SCOPES = ['openid', 'profile', 'email', 'offline_access'];
const KNOWN_GRAPH_SCOPES = [
  'User.Read', 'User.ReadBasic.All', 'User.Read.All', 'Mail.Read', 'Mail.ReadBasic', 'Mail.ReadWrite', 'Mail.Send',
  'MailboxSettings.Read', 'MailboxSettings.ReadWrite', 'Calendars.Read', 'Calendars.ReadWrite', 'Contacts.Read',
  'Files.Read', 'Files.ReadWrite',
];
const CODE_LIFETIME_MS = 10 * 60 * 1000; // [entra-docs v2-oauth2-auth-code-flow]
const REFRESH_INACTIVITY_MS = 90 * 24 * 3600 * 1000; // [entra-docs refresh-tokens]
const DEVICE_CODE_LIFETIME_S = 900;
const DEVICE_CODE_INTERVAL_S = 5;
/** Refresh tokens of a "Single-page application" redirect URI: 24 hours from sign-in, not extended [entra-docs refresh-tokens]. */
const SPA_REFRESH_LIFETIME_MS = 24 * 3600 * 1000;

interface CodeRecord {
  clientId: string;
  redirectUri: string;
  /** The platform the redirect URI is registered under, when the code was issued. */
  platform: RedirectPlatform;
  oid: string;
  tid: string;
  scopes: string[];
  challenge?: string;
  challengeMethod?: string;
  nonce?: string;
  sid: string;
  authTime: number;
  expiresAt: number;
  redeemed: boolean;
}

interface DeviceCodeRecord {
  deviceCode: string;
  userCode: string;
  clientId: string;
  /** Where the device code was asked for: who may sign in with it. */
  segment: TenantSegment;
  scopes: string[];
  expiresAt: number;
  lastPollAt?: number;
  status: 'pending' | 'approved' | 'declined' | 'redeemed';
  oid?: string;
  sid?: string;
}

interface Session {
  oid: string;
  sid: string;
  authTime: number;
}

interface ParsedScopes {
  graph: string[];
  oidc: string[];
  resourceDefault: boolean;
}

class ScopeError extends Error {}

function parseScopes(raw: string, app: AppRegistration): ParsedScopes {
  const graph = new Set<string>();
  const oidc = new Set<string>();
  let resourceDefault = false;
  for (const s of raw.split(/\s+/).filter(Boolean)) {
    const lower = s.toLowerCase();
    if (OIDC_SCOPES.includes(lower)) {
      oidc.add(lower);
      continue;
    }
    let name = s;
    for (const prefix of [`${GRAPH_RESOURCE}/`, `${GRAPH_APP_ID}/`, 'https://graph.microsoft.com//']) {
      if (lower.startsWith(prefix.toLowerCase())) name = s.slice(prefix.length);
    }
    if (name.includes('/')) throw new ScopeError(s);
    if (name.toLowerCase() === '.default') {
      resourceDefault = true;
      for (const p of app.delegated) graph.add(p);
      continue;
    }
    const known = KNOWN_GRAPH_SCOPES.find((k) => k.toLowerCase() === name.toLowerCase());
    if (!known) throw new ScopeError(s);
    graph.add(known);
  }
  return { graph: [...graph], oidc: [...oidc], resourceDefault };
}

function randomToken(prefix: string, bytes: number): string {
  return prefix + randomBytes(bytes).toString('base64url');
}

function s256(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

function pairwiseSub(oid: string, clientId: string): string {
  return createHash('sha256').update(`${oid}:${clientId}`).digest('base64url').slice(0, 43);
}

function clientInfo(oid: string, tid: string): string {
  return Buffer.from(JSON.stringify({ uid: oid, utid: tid })).toString('base64url');
}

function setEntraHeaders(res: Response): string {
  const requestId = randomUUID();
  res.setHeader('Cache-Control', 'no-store, no-cache');
  res.setHeader('Pragma', 'no-cache');
  res.setHeader('x-ms-request-id', requestId);
  res.setHeader('x-ms-ests-server', '2.1.sandbox - WEULR1 ProdSlices');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  return requestId;
}

function first(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  return undefined;
}

function paramsOf(req: Request): Record<string, string> {
  const src = { ...(req.query as Record<string, unknown>), ...((req.body ?? {}) as Record<string, unknown>) };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(src)) {
    const s = first(v);
    if (s !== undefined) out[k] = s;
  }
  return out;
}

function bodyParamsOf(req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((req.body ?? {}) as Record<string, unknown>)) {
    const s = first(v);
    if (s !== undefined) out[k] = s;
  }
  return out;
}

function cookieOf(req: Request, name: string): string | undefined {
  const header = req.headers.cookie ?? '';
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

const AUTHORIZE_PARAMS = [
  'client_id', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'nonce', 'code_challenge',
  'code_challenge_method', 'prompt', 'login_hint', 'domain_hint', 'client_info',
];

/**
 * The two faces of the authority. `api`: what programs call (discovery, JWKS, token, devicecode), served over
 * HTTPS only. `browser`: the pages a person opens (authorize, sign-in, logout, device code page), served on the
 * HTTPS origin too (nothing that existed breaks) and on the sandbox's plain-HTTP loopback sign-in origin, which
 * discovery's `authorization_endpoint` and the device code's `verification_uri` name (docs/microsoft-notes.md,
 * "The sandbox's sign-in pages").
 *
 * @example
 * const { api, browser } = createEntraRouter(ctx);
 * httpsApp.use(api, browser); loopbackHttpApp.use(browser);
 */
export function createEntraRouter(ctx: SandboxContext): { api: express.Router; browser: express.Router } {
  const api = express.Router();
  const browser = express.Router();
  const codes = new Map<string, CodeRecord>();
  const sessions = new Map<string, Session>();
  const deviceCodes = new Map<string, DeviceCodeRecord>();
  const form = express.urlencoded({ extended: false, limit: '100kb' });

  const issuerFor = (tid: string) => `${ctx.origin}/${tid}/v2.0`;

  function tenantOr400(req: Request, res: Response): TenantSegment | undefined {
    const segment = String(req.params.tenant);
    const t = resolveTenant(segment);
    if (!t) {
      setEntraHeaders(res);
      res.status(400).json(entraErrorBody(ctx.now(), 'invalid_tenant', 90002, AADSTS[90002](segment)));
    }
    return t;
  }

  // ---------- discovery ----------
  api.get('/:tenant/v2.0/.well-known/openid-configuration', (req, res) => {
    const t = tenantOr400(req, res);
    if (!t) return;
    const seg = t.kind === 'tenant' ? t.tid : t.kind;
    const issuer = t.kind === 'tenant' || t.kind === 'consumers' ? issuerFor(t.tid) : `${ctx.origin}/{tenantid}/v2.0`;
    const base = `${ctx.origin}/${seg}`;
    const pages = `${ctx.signInOrigin}/${seg}`;
    setEntraHeaders(res);
    res.setHeader('Cache-Control', 'max-age=86400, private');
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.json({
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer,
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${ctx.origin}/oidc/userinfo`,
      authorization_endpoint: `${pages}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${pages}/oauth2/v2.0/logout`,
      claims_supported: [
        'sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud',
        'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email',
      ],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: t.kind === 'tenant' ? 'EU' : null,
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: new URL(ctx.origin).host,
      rbac_url: 'https://pas.windows.net',
    });
  });

  api.get('/:tenant/discovery/v2.0/keys', (req, res) => {
    const t = tenantOr400(req, res);
    if (!t) return;
    const jwk = createPublicKey(ctx.signing.publicKeyPem).export({ format: 'jwk' }) as { n: string; e: string };
    const issuer = t.kind === 'tenant' || t.kind === 'consumers' ? issuerFor(t.tid) : `${ctx.origin}/{tenantid}/v2.0`;
    setEntraHeaders(res);
    res.setHeader('Cache-Control', 'max-age=86400, private');
    res.json({
      keys: [{
        kty: 'RSA', use: 'sig', kid: ctx.signing.kid, x5t: ctx.signing.kid, n: jwk.n, e: jwk.e,
        x5c: [certificateDerBase64(ctx.signing.certPem)], issuer,
      }],
    });
  });

  // ---------- authorize ----------
  function errorPage(res: Response, code: number, text: string): void {
    const requestId = setEntraHeaders(res);
    res.status(400).type('html').send(renderErrorPage({
      code, text, requestId, correlationId: randomUUID(), timestamp: entraTimestamp(ctx.now()),
    }));
  }

  function redirectWithError(res: Response, p: Record<string, string>, error: string, code: number, text: string, subcode?: string): void {
    const body = entraErrorBody(ctx.now(), error, code, text);
    const params: Record<string, string> = { error, error_description: body.error_description, error_uri: body.error_uri };
    if (subcode) params.error_subcode = subcode;
    if (p.state !== undefined) params.state = p.state;
    respondToClient(res, p, params);
  }

  function respondToClient(res: Response, p: Record<string, string>, params: Record<string, string>): void {
    setEntraHeaders(res);
    const mode = p.response_mode ?? 'query';
    if (mode === 'form_post') {
      const inputs = Object.entries(params)
        .map(([k, v]) => `<input type="hidden" name="${escapeAttr(k)}" value="${escapeAttr(v)}">`).join('');
      res.type('html').send(`<!DOCTYPE html><html><head><title>Working...</title></head><body onload="document.forms[0].submit()"><form method="POST" name="hiddenform" action="${escapeAttr(p.redirect_uri ?? '')}">${inputs}<noscript><p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit"></noscript></form></body></html>`);
      return;
    }
    const url = new URL(p.redirect_uri ?? '');
    const qs = new URLSearchParams(params).toString();
    if (mode === 'fragment') url.hash = qs;
    else for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    res.redirect(302, url.toString());
  }

  /** Validates an authorize request; on success returns what the sign-in needs, else has responded. */
  function validateAuthorize(req: Request, res: Response, p: Record<string, string>):
    { t: TenantSegment; app: AppRegistration; reg: EffectiveRegistration; platform: RedirectPlatform; parsed: ParsedScopes } | undefined {
    const segment = String(req.params.tenant);
    const t = resolveTenant(segment);
    if (!t) return void errorPage(res, 90002, AADSTS[90002](segment));
    if (!p.client_id) return void errorPage(res, 900144, AADSTS[900144]('client_id'));
    const app = findApp(p.client_id);
    if (!app) return void errorPage(res, 700016, AADSTS[700016](p.client_id, t.kind === 'tenant' ? t.tid : segment));
    if (!p.redirect_uri) return void errorPage(res, 900144, AADSTS[900144]('redirect_uri'));
    const reg = registrationOf(ctx, app);
    const redirect = registeredRedirect(reg, p.redirect_uri);
    if (!redirect) return void errorPage(res, 50011, AADSTS[50011](p.redirect_uri, app.clientId));
    const refusal = audienceRefusal(reg, t);
    if (refusal && refusal.code === undefined) {
      // The Microsoft account service shows this on its own page ("We're unable to complete your request").
      setEntraHeaders(res);
      return void res.status(400).type('html').send(renderMessagePage("We're unable to complete your request", `${refusal.error}: ${refusal.text}`));
    }
    // From here on, errors go back to the app's redirect URI.
    if (refusal) return void redirectWithError(res, p, refusal.error, refusal.code!, refusal.text);
    if (p.response_mode && !['query', 'fragment', 'form_post'].includes(p.response_mode)) {
      return void redirectWithError(res, { ...p, response_mode: 'query' }, 'invalid_request', 900144, `The provided value for the input parameter 'response_mode' is not valid: '${p.response_mode}'.`);
    }
    if (!p.response_type) return void redirectWithError(res, p, 'invalid_request', 900144, AADSTS[900144]('response_type'));
    if (p.response_type !== 'code') {
      return void redirectWithError(res, p, 'unsupported_response_type', 700054, `response_type '${p.response_type}' is not enabled for the application.`);
    }
    if (!p.scope) return void redirectWithError(res, p, 'invalid_request', 900144, AADSTS[900144]('scope'));
    let parsed: ParsedScopes;
    try {
      parsed = parseScopes(p.scope, app);
    } catch (e) {
      return void redirectWithError(res, p, 'invalid_scope', 70011, AADSTS[70011]((e as Error).message));
    }
    if (p.code_challenge_method && !['S256', 'plain'].includes(p.code_challenge_method)) {
      return void redirectWithError(res, p, 'invalid_request', 50149, AADSTS[50149]());
    }
    if (p.code_challenge !== undefined && (p.code_challenge.length < 43 || p.code_challenge.length > 128)) {
      return void redirectWithError(res, p, 'invalid_request', 501491, AADSTS[501491]());
    }
    return { t, app, reg, platform: redirect.platform, parsed };
  }

  function issueCode(res: Response, p: Record<string, string>, platform: RedirectPlatform, parsed: ParsedScopes, session: Session): void {
    const code = randomToken('1.AXEAsandbox', 96);
    const tid = findUser(session.oid)!.tid;
    codes.set(code, {
      clientId: p.client_id!.toLowerCase(), redirectUri: p.redirect_uri!, platform, oid: session.oid, tid,
      scopes: [...parsed.graph, ...parsed.oidc], challenge: p.code_challenge,
      challengeMethod: p.code_challenge ? (p.code_challenge_method ?? 'plain') : undefined,
      nonce: p.nonce, sid: session.sid, authTime: session.authTime, expiresAt: ctx.now() + CODE_LIFETIME_MS, redeemed: false,
    });
    const params: Record<string, string> = { code };
    if (p.client_info === '1') params.client_info = clientInfo(session.oid, tid);
    if (p.state !== undefined) params.state = p.state;
    params.session_state = session.sid;
    respondToClient(res, p, params);
  }

  /** The seeded users who may sign in here (the sign-in page offers them). */
  const usersFor = (reg: EffectiveRegistration, t: TenantSegment) =>
    SANDBOX_USERS.filter((u) => userFits(reg, t, u)).map((u) => ({ upn: u.upn, displayName: u.displayName }));

  function signInModel(req: Request, p: Record<string, string>, app: AppRegistration, reg: EffectiveRegistration, t: TenantSegment, parsed: ParsedScopes, error?: string) {
    const hidden: Record<string, string> = {};
    for (const k of AUTHORIZE_PARAMS) if (p[k] !== undefined) hidden[k] = p[k]!;
    return {
      action: `/${encodeURIComponent(String(req.params.tenant))}/login`, hidden, appName: app.displayName,
      permissions: describePermissions(parsed), loginHint: p.username ?? p.login_hint, error,
      users: usersFor(reg, t), passwordHint: 'sandbox',
    };
  }

  function authorize(req: Request, res: Response): void {
    const p = paramsOf(req);
    const ok = validateAuthorize(req, res, p);
    if (!ok) return;
    const { t, app, reg, platform, parsed } = ok;
    const found = sessions.get(cookieOf(req, 'ESTSAUTH') ?? '');
    const sessionUser = found && findUser(found.oid);
    const session = sessionUser && userFits(reg, t, sessionUser) ? found : undefined;
    const prompt = p.prompt ?? '';
    const hintMatches = !p.login_hint || (session && findUser(p.login_hint)?.oid === session.oid);
    if (prompt === 'none') {
      if (session && hintMatches) return issueCode(res, p, platform, parsed, session);
      return redirectWithError(res, p, 'login_required', 50058, AADSTS[50058]());
    }
    if (session && hintMatches && !prompt) return issueCode(res, p, platform, parsed, session);
    setEntraHeaders(res);
    res.type('html').send(renderSignInPage(signInModel(req, p, app, reg, t, parsed)));
  }
  browser.get('/:tenant/oauth2/v2.0/authorize', authorize);
  browser.post('/:tenant/oauth2/v2.0/authorize', form, authorize);

  browser.post('/:tenant/login', form, (req, res) => {
    const p = paramsOf(req);
    const ok = validateAuthorize(req, res, p);
    if (!ok) return;
    const { t, app, reg, platform, parsed } = ok;
    if (p.action === 'cancel') {
      return redirectWithError(res, p, 'access_denied', 65004, AADSTS[65004](), 'cancel');
    }
    const user = findUser(p.username ?? '');
    let error: string | undefined;
    if (!user || !userFits(reg, t, user)) {
      error = `This username may be incorrect. Make sure you typed it correctly. Otherwise, contact your admin. (AADSTS50034: ${AADSTS[50034](p.username ?? '')})`;
    } else if (p.password !== user.password) {
      error = `Your account or password is incorrect. If you don't remember your password, reset it now. (AADSTS50126: ${AADSTS[50126]()})`;
    }
    if (error || !user) {
      setEntraHeaders(res);
      res.status(200).type('html').send(renderSignInPage(signInModel(req, p, app, reg, t, parsed, error)));
      return;
    }
    const session: Session = { oid: user.oid, sid: randomUUID(), authTime: ctx.now() };
    sessions.set(session.sid, session);
    res.setHeader('Set-Cookie', `ESTSAUTH=${session.sid}; Path=/; ${sessionCookieAttributes(req)}`);
    issueCode(res, p, platform, parsed, session);
  });

  browser.get('/:tenant/oauth2/v2.0/logout', (req, res) => {
    const sid = cookieOf(req, 'ESTSAUTH');
    if (sid) sessions.delete(sid);
    res.setHeader('Set-Cookie', `ESTSAUTH=; Path=/; ${sessionCookieAttributes(req)}; Max-Age=0`);
    setEntraHeaders(res);
    const target = first(req.query.post_logout_redirect_uri);
    if (target) {
      try {
        const u = new URL(target);
        if (u.protocol === 'http:' || u.protocol === 'https:') return void res.redirect(302, target);
      } catch { /* fall through to the page */ }
    }
    res.type('html').send(renderMessagePage('You signed out of your account', "It's a good idea to close all browser windows."));
  });

  // ---------- token ----------
  /**
   * Who is asking: the app and whether it proved a credential. A request without one is a public client's, which
   * each grant then checks against the registration (publicClientRequestAllowed).
   */
  function authenticateClient(p: Record<string, string>, req: Request, t: TenantSegment): { app: AppRegistration; credentialed: boolean } {
    let clientId = p.client_id;
    let secret = p.client_secret;
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const [id, ...rest] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      clientId = decodeURIComponent(id ?? '');
      secret = decodeURIComponent(rest.join(':'));
    }
    if (!clientId) throw new TokenEndpointError(400, 'invalid_request', 900144, AADSTS[900144]('client_id'));
    const app = findApp(clientId);
    if (!app) {
      throw new TokenEndpointError(400, 'unauthorized_client', 700016, AADSTS[700016](clientId, t.kind === 'tenant' ? t.tid : String(req.params.tenant)));
    }
    const hasCredential = secret !== undefined || p.client_assertion !== undefined;
    if (app.publicClient) {
      if (hasCredential) throw new TokenEndpointError(401, 'invalid_client', 700025, AADSTS[700025]());
    } else if (hasCredential) {
      if (p.client_assertion !== undefined && secret === undefined) {
        // private_key_jwt: a certificate registered on the app (src/sandbox/client-assertion.ts).
        verifyClientAssertion(ctx, app, p, t.kind === 'tenant' ? t.tid : undefined);
      } else if (secret === undefined || !app.secret || !safeEqual(secret, app.secret)) {
        throw new TokenEndpointError(401, 'invalid_client', 7000215, AADSTS[7000215](app.clientId));
      } else if (secretExpired(ctx, app.clientId)) {
        throw new TokenEndpointError(401, 'invalid_client', 7000222, `The provided client secret keys for app '${app.clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`);
      }
    }
    return { app, credentialed: hasCredential };
  }

  /**
   * A request without a client credential is accepted as a public client's only when the registration allows it:
   * a code or grant of a "Mobile and desktop applications" (or SPA) redirect URI, or "Allow public client flows: Yes"
   * (which device code always needs). Otherwise Entra treats the app as confidential: 401 AADSTS7000218
   * (docs/microsoft-notes.md "Registration traps").
   */
  function requirePublicClientAllowed(app: AppRegistration, credentialed: boolean, platform: RedirectPlatform | 'device'): void {
    if (credentialed) return;
    const reg = registrationOf(ctx, app);
    const byPlatform = platform === 'publicClient' || platform === 'spa';
    if (!byPlatform && !reg.publicClientFlows) throw new TokenEndpointError(401, 'invalid_client', 7000218, AADSTS[7000218]());
  }

  /** A "Single-page application" code or refresh token is redeemed only by a browser's cross-origin request. */
  function requireCrossOrigin(req: Request, platform: RedirectPlatform | undefined): void {
    if (platform === 'spa' && !req.headers.origin) {
      throw new TokenEndpointError(400, 'invalid_request', 9002327, AADSTS[9002327]());
    }
  }

  function issueUserTokens(app: AppRegistration, user: SandboxUser, scopes: string[], grant: Grant, opts: { nonce?: string; clientInfo?: boolean }) {
    const now = ctx.now();
    const iat = Math.floor(now / 1000);
    const graph = scopes.filter((s) => !OIDC_SCOPES.includes(s));
    if (graph.length === 0) graph.push('User.Read');
    const oidc = scopes.filter((s) => ['profile', 'openid', 'email'].includes(s));
    const scope = [...graph, ...oidc].join(' ');
    const lifetime = ctx.accessTokenLifetimeSec;
    const access = isConsumer(user) ? opaqueAccessToken(user, app, graph, iat + lifetime) : signJwt({
      aud: GRAPH_RESOURCE, iss: `https://sts.windows.net/${SANDBOX_TENANT_ID}/`, iat, nbf: iat, exp: iat + lifetime,
      acct: 0, acr: '1', amr: ['pwd'], app_displayname: app.displayName, appid: app.clientId, appidacr: app.publicClient ? '0' : '1',
      family_name: user.surname, given_name: user.givenName, idtyp: 'user', ipaddr: '127.0.0.1', name: user.displayName,
      oid: user.oid, platf: '14', puid: '10032000SANDBOX', scp: scope, sid: grant.sid, sub: pairwiseSub(user.oid, GRAPH_APP_ID),
      tenant_region_scope: 'EU', tid: SANDBOX_TENANT_ID, unique_name: user.upn, upn: user.upn,
      uti: randomBytes(16).toString('base64url'), ver: '1.0', xms_tcdt: 1600000000,
    }, ctx.signing.keyPem, ctx.signing.kid);
    const body: Record<string, unknown> = {
      token_type: 'Bearer', scope, expires_in: lifetime, ext_expires_in: lifetime, access_token: access,
    };
    if (scopes.includes('offline_access')) {
      const refresh = randomToken('1.AXEAsandboxRT', 240);
      ctx.state.data.refreshTokens[hashToken(refresh)] = { grantId: grant.id, issuedAt: now };
      body.refresh_token = refresh;
    }
    if (scopes.includes('openid')) {
      const claims: Record<string, unknown> = {
        aud: app.clientId, iss: issuerFor(user.tid), iat, nbf: iat, exp: iat + 3600,
        aio: randomBytes(24).toString('base64url'), oid: user.oid, rh: '0.sandbox.', sid: grant.sid,
        sub: pairwiseSub(user.oid, app.clientId), tid: user.tid, uti: randomBytes(16).toString('base64url'), ver: '2.0',
      };
      if (scopes.includes('profile')) {
        claims.name = user.displayName;
        claims.preferred_username = user.upn;
      }
      if (scopes.includes('email')) claims.email = user.upn;
      if (opts.nonce !== undefined) claims.nonce = opts.nonce;
      body.id_token = signJwt(claims, ctx.signing.keyPem, ctx.signing.kid);
    }
    if (opts.clientInfo) body.client_info = clientInfo(user.oid, user.tid);
    ctx.state.changed();
    return body;
  }

  /**
   * A personal account's access token: not a JWT (Microsoft's consumer tokens are opaque to clients,
   * docs/microsoft-notes.md "Personal accounts"); the sandbox's Graph finds it by hash. Expired ones are dropped.
   */
  function opaqueAccessToken(user: SandboxUser, app: AppRegistration, scopes: string[], exp: number): string {
    const token = randomToken('EwBYA8l6BAAUsandbox', 300);
    const all = (ctx.state.data.opaqueAccessTokens ??= {});
    const nowS = ctx.now() / 1000;
    for (const [hash, rec] of Object.entries(all)) if (rec.exp < nowS - 300) delete all[hash];
    all[hashToken(token)] = { oid: user.oid, appId: app.clientId, scopes, exp };
    return token;
  }

  function newGrant(oid: string, clientId: string, scopes: string[], sid: string, authTime: number, platform?: RedirectPlatform): Grant {
    const grant: Grant = { id: randomUUID(), oid, clientId, scopes, sid, authTime, createdAt: ctx.now(), ...(platform ? { platform } : {}) };
    ctx.state.data.grants.push(grant);
    return grant;
  }

  function userOfGrant(grant: Grant): SandboxUser {
    const user = findUser(grant.oid);
    if (!user) throw new TokenEndpointError(400, 'invalid_grant', 50034, AADSTS[50034](grant.oid));
    return user;
  }

  function grantAuthorizationCode(p: Record<string, string>, app: AppRegistration, credentialed: boolean, req: Request) {
    if (!p.code) throw new TokenEndpointError(400, 'invalid_request', 900144, AADSTS[900144]('code'));
    const rec = codes.get(p.code);
    if (!rec || rec.clientId !== app.clientId) throw new TokenEndpointError(400, 'invalid_grant', 70000, AADSTS[70000]('code'));
    if (rec.redeemed) throw new TokenEndpointError(400, 'invalid_grant', 54005, AADSTS[54005]());
    if (ctx.now() > rec.expiresAt) throw new TokenEndpointError(400, 'invalid_grant', 70008, AADSTS[70008]());
    if (!p.redirect_uri) throw new TokenEndpointError(400, 'invalid_request', 900144, AADSTS[900144]('redirect_uri'));
    if (p.redirect_uri !== rec.redirectUri) {
      throw new TokenEndpointError(400, 'invalid_grant', 70000, "The provided value for the 'redirect_uri' is not valid. The value must exactly match the redirect URI used to obtain the authorization code.");
    }
    if (rec.challenge !== undefined) {
      const v = p.code_verifier;
      const expected = v === undefined ? undefined : rec.challengeMethod === 'S256' ? s256(v) : v;
      if (expected === undefined || !safeEqual(expected, rec.challenge)) {
        throw new TokenEndpointError(400, 'invalid_grant', 501481, AADSTS[501481]());
      }
    }
    requireCrossOrigin(req, rec.platform);
    requirePublicClientAllowed(app, credentialed, rec.platform);
    rec.redeemed = true;
    const user = findUser(rec.oid)!;
    const grant = newGrant(rec.oid, app.clientId, rec.scopes, rec.sid, rec.authTime, rec.platform);
    return { user, body: issueUserTokens(app, user, rec.scopes, grant, { nonce: rec.nonce, clientInfo: p.client_info === '1' }) };
  }

  function grantRefreshToken(p: Record<string, string>, app: AppRegistration, credentialed: boolean, req: Request) {
    if (!p.refresh_token) throw new TokenEndpointError(400, 'invalid_request', 900144, AADSTS[900144]('refresh_token'));
    const hash = hashToken(p.refresh_token);
    const rec = ctx.state.data.refreshTokens[hash];
    const grant = rec && ctx.state.data.grants.find((g) => g.id === rec.grantId);
    if (!rec || !grant) throw new TokenEndpointError(400, 'invalid_grant', 9002313, AADSTS[9002313]());
    if (grant.clientId !== app.clientId) throw new TokenEndpointError(400, 'invalid_grant', 70000, AADSTS[70000]('refresh_token'));
    requireCrossOrigin(req, grant.platform);
    requirePublicClientAllowed(app, credentialed, grant.platform ?? 'publicClient');
    if (grant.platform === 'spa' && ctx.now() - grant.createdAt > SPA_REFRESH_LIFETIME_MS) {
      // Observed: "The token was issued on 2022-04-01T07:29:11.1319999+00:00." with suberror bad_token
      // (AzureAD/microsoft-authentication-library-for-js#7033).
      const issued = new Date(grant.createdAt).toISOString().replace(/\.(\d{3})Z$/, '.$10000+00:00');
      throw new TokenEndpointError(400, 'invalid_grant', 700084, AADSTS[700084](issued), { suberror: 'bad_token' });
    }
    const user = userOfGrant(grant);
    const injection = ctx.injections.find((i) => i.remaining > 0 && (i.target === '*' || i.target === user.upn));
    if (injection) {
      injection.remaining -= 1;
      ctx.injections = ctx.injections.filter((i) => i.remaining > 0);
      const e = injection.error;
      throw new TokenEndpointError(e.status, e.error, e.aadsts, e.description ?? describeInjected(e), { suberror: e.suberror, claims: e.claims, retryAfter: e.retryAfter });
    }
    const validFrom = ctx.state.data.tokensValidFrom[user.upn];
    if (grant.revokedAt !== undefined && grant.revokeReason === 'reuse') {
      throw new TokenEndpointError(400, 'invalid_grant', 70008, AADSTS[70008]());
    }
    if (grant.revokedAt !== undefined || (validFrom !== undefined && grant.authTime < validFrom)) {
      const from = validFrom ?? grant.revokedAt ?? ctx.now();
      throw new TokenEndpointError(400, 'invalid_grant', 50173, AADSTS[50173](entraTimestamp(grant.authTime), entraTimestamp(from)));
    }
    if (ctx.now() - rec.issuedAt > REFRESH_INACTIVITY_MS) {
      throw new TokenEndpointError(400, 'invalid_grant', 700082, AADSTS[700082](entraTimestamp(rec.issuedAt)), { suberror: 'bad_token' });
    }
    if (rec.rotatedAt !== undefined && ctx.state.data.revokeOnReuse) {
      grant.revokedAt = ctx.now();
      grant.revokeReason = 'reuse';
      ctx.state.changed();
      throw new TokenEndpointError(400, 'invalid_grant', 70008, AADSTS[70008]());
    }
    let scopes = grant.scopes;
    if (p.scope) {
      let parsed: ParsedScopes;
      try {
        parsed = parseScopes(p.scope, app);
      } catch (e) {
        throw new TokenEndpointError(400, 'invalid_scope', 70011, AADSTS[70011]((e as Error).message));
      }
      const missing = parsed.graph.filter((s) => !grant.scopes.includes(s) && !app.delegated.includes(s));
      if (missing.length) {
        throw new TokenEndpointError(400, 'invalid_grant', 65001,
          `The user or administrator has not consented to use the application with ID '${app.clientId}' named '${app.displayName}'. Send an interactive authorization request for this user and resource.`,
          { suberror: 'consent_required' });
      }
      // offline_access is implied by using a refresh token; keep openid if it was granted.
      scopes = [...parsed.graph, ...parsed.oidc.filter((s) => grant.scopes.includes(s)), 'offline_access'];
    }
    rec.rotatedAt = rec.rotatedAt ?? ctx.now();
    return { user, body: issueUserTokens(app, user, [...new Set(scopes)], grant, { clientInfo: p.client_info === '1' }) };
  }

  function grantClientCredentials(p: Record<string, string>, app: AppRegistration, credentialed: boolean) {
    if (app.publicClient || !credentialed) throw new TokenEndpointError(401, 'invalid_client', 7000218, AADSTS[7000218]());
    const scope = p.scope ?? '';
    if (!scope) throw new TokenEndpointError(400, 'invalid_request', 900144, AADSTS[900144]('scope'));
    if (!/\/\.default$/i.test(scope) || scope.trim().includes(' ')) {
      throw new TokenEndpointError(400, 'invalid_scope', 1002012,
        `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
    }
    // Graph is known by its URI, its app id, or (sandbox) its own origin.
    const resource = scope.trim().replace(/\/\.default$/i, '');
    if (![GRAPH_RESOURCE, GRAPH_APP_ID, ctx.origin].includes(resource)) {
      throw new TokenEndpointError(400, 'invalid_resource', 500011,
        `The resource principal named ${resource} was not found in the tenant named ${SANDBOX_TENANT_ID}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`);
    }
    const iat = Math.floor(ctx.now() / 1000);
    const lifetime = ctx.accessTokenLifetimeSec;
    const access = signJwt({
      aud: GRAPH_RESOURCE, iss: `https://sts.windows.net/${SANDBOX_TENANT_ID}/`, iat, nbf: iat, exp: iat + lifetime,
      app_displayname: app.displayName, appid: app.clientId, appidacr: '1', idtyp: 'app',
      // The service principal's object id: a GUID, stable per app.
      oid: createHash('sha256').update(`sp:${app.clientId}`).digest('hex').replace(/^(.{8})(.{4}).(.{3}).(.{3})(.{12}).*$/, '$1-$2-4$3-8$4-$5'), roles: grantedRolesOf(ctx, app),
      sub: app.clientId, tid: SANDBOX_TENANT_ID, uti: randomBytes(16).toString('base64url'), ver: '1.0',
    }, ctx.signing.keyPem, ctx.signing.kid);
    return { body: { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: access } };
  }

  function grantDeviceCode(p: Record<string, string>, app: AppRegistration, credentialed: boolean) {
    requirePublicClientAllowed(app, credentialed, 'device');
    const code = p.device_code ?? p.code;
    if (!code) throw new TokenEndpointError(400, 'invalid_request', 900144, AADSTS[900144]('device_code'));
    const rec = deviceCodes.get(code);
    if (!rec || rec.clientId !== app.clientId) throw new TokenEndpointError(400, 'invalid_grant', 70000, AADSTS[70000]('device_code'));
    const now = ctx.now();
    if (rec.status === 'redeemed') throw new TokenEndpointError(400, 'invalid_grant', 54005, AADSTS[54005]());
    if (now > rec.expiresAt) throw new TokenEndpointError(400, 'expired_token', 70020, AADSTS[70020]());
    if (rec.status === 'declined') throw new TokenEndpointError(400, 'authorization_declined', 70000, 'The user declined the authorization request.');
    if (rec.status === 'pending') {
      const tooFast = rec.lastPollAt !== undefined && now - rec.lastPollAt < DEVICE_CODE_INTERVAL_S * 1000;
      rec.lastPollAt = now;
      if (tooFast) throw new TokenEndpointError(400, 'slow_down', 70000, 'The client is polling too quickly and should back off.');
      throw new TokenEndpointError(400, 'authorization_pending', 70016, AADSTS[70016]());
    }
    rec.status = 'redeemed';
    const user = findUser(rec.oid!)!;
    const grant = newGrant(user.oid, app.clientId, rec.scopes, rec.sid!, now);
    return { user, body: issueUserTokens(app, user, rec.scopes, grant, { clientInfo: p.client_info === '1' }) };
  }

  api.post('/:tenant/oauth2/v2.0/token', form, (req, res) => {
    setEntraHeaders(res);
    const p = bodyParamsOf(req);
    const grantType = p.grant_type ?? '';
    let upn: string | undefined;
    try {
      const t = resolveTenant(String(req.params.tenant));
      if (!t) throw new TokenEndpointError(400, 'invalid_tenant', 90002, AADSTS[90002](String(req.params.tenant)));
      if (!grantType) throw new TokenEndpointError(400, 'invalid_request', 900144, AADSTS[900144]('grant_type'));
      const { app, credentialed } = authenticateClient(p, req, t);
      let result: { user?: SandboxUser; body: Record<string, unknown> };
      if (grantType === 'authorization_code') result = grantAuthorizationCode(p, app, credentialed, req);
      else if (grantType === 'refresh_token') result = grantRefreshToken(p, app, credentialed, req);
      else if (grantType === 'client_credentials') result = grantClientCredentials(p, app, credentialed);
      else if (grantType === 'urn:ietf:params:oauth:grant-type:device_code' || grantType === 'device_code') result = grantDeviceCode(p, app, credentialed);
      else throw new TokenEndpointError(400, 'unsupported_grant_type', 70003, AADSTS[70003](grantType));
      upn = result.user?.upn;
      pushLog(ctx.tokenLog, { at: new Date(ctx.now()).toISOString(), grantType, clientId: app.clientId, upn, status: 200 });
      res.status(200).json(result.body);
    } catch (e) {
      if (!(e instanceof TokenEndpointError)) throw e;
      if (p.refresh_token && !upn) {
        const rec = ctx.state.data.refreshTokens[hashToken(p.refresh_token)];
        const g = rec && ctx.state.data.grants.find((x) => x.id === rec.grantId);
        upn = g ? findUser(g.oid)?.upn : undefined;
      }
      pushLog(ctx.tokenLog, {
        at: new Date(ctx.now()).toISOString(), grantType, clientId: p.client_id ?? '', upn, status: e.status, error: e.error, aadsts: e.code,
      });
      if (e.extra.retryAfter) res.setHeader('Retry-After', e.extra.retryAfter);
      res.status(e.status).json(entraErrorBody(ctx.now(), e.error, e.code, e.text, { suberror: e.extra.suberror, claims: e.extra.claims }));
    }
  });

  // ---------- device code (RFC 8628) ----------
  api.post('/:tenant/oauth2/v2.0/devicecode', form, (req, res) => {
    setEntraHeaders(res);
    const p = bodyParamsOf(req);
    const t = resolveTenant(String(req.params.tenant));
    if (!t) return void res.status(400).json(entraErrorBody(ctx.now(), 'invalid_tenant', 90002, AADSTS[90002](String(req.params.tenant))));
    const app = p.client_id ? findApp(p.client_id) : undefined;
    if (!p.client_id) return void res.status(400).json(entraErrorBody(ctx.now(), 'invalid_request', 900144, AADSTS[900144]('client_id')));
    if (!app) return void res.status(400).json(entraErrorBody(ctx.now(), 'unauthorized_client', 700016, AADSTS[700016](p.client_id, t.kind === 'tenant' ? t.tid : t.kind)));
    // "Allow public client flows: No" is not checked here: the code is issued and the poll answers AADSTS7000218
    // (docs/microsoft-notes.md "Registration traps").
    const refusal = audienceRefusal(registrationOf(ctx, app), t);
    if (refusal) return void res.status(400).json(entraErrorBody(ctx.now(), refusal.error, refusal.code, refusal.text));
    if (!p.scope) return void res.status(400).json(entraErrorBody(ctx.now(), 'invalid_request', 900144, AADSTS[900144]('scope')));
    let parsed: ParsedScopes;
    try {
      parsed = parseScopes(p.scope, app);
    } catch (e) {
      return void res.status(400).json(entraErrorBody(ctx.now(), 'invalid_scope', 70011, AADSTS[70011]((e as Error).message)));
    }
    const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
    const userCode = Array.from(randomBytes(9), (b) => alphabet[b % alphabet.length]).join('');
    const deviceCode = randomToken('DAQABIQEAAABVrSpeuWamRam2jAF1XRQE', 96);
    deviceCodes.set(deviceCode, {
      deviceCode, userCode, clientId: app.clientId, segment: t, scopes: [...parsed.graph, ...parsed.oidc], status: 'pending',
      expiresAt: ctx.now() + DEVICE_CODE_LIFETIME_S * 1000,
    });
    const verificationUri = `${ctx.signInOrigin}/devicelogin`;
    res.json({
      user_code: userCode, device_code: deviceCode, verification_uri: verificationUri,
      expires_in: DEVICE_CODE_LIFETIME_S, interval: DEVICE_CODE_INTERVAL_S,
      message: `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${userCode} to authenticate.`,
    });
  });

  const findDeviceCode = (userCode: string) =>
    [...deviceCodes.values()].find((d) => d.userCode === userCode.trim().toUpperCase() && d.status === 'pending' && d.expiresAt > ctx.now());

  browser.get('/devicelogin', (_req, res) => {
    setEntraHeaders(res);
    res.type('html').send(renderDeviceCodePage('/devicelogin'));
  });

  browser.post('/devicelogin', form, (req, res) => {
    setEntraHeaders(res);
    const p = bodyParamsOf(req);
    const rec = findDeviceCode(p.otc ?? '');
    if (!rec) return void res.type('html').send(renderDeviceCodePage('/devicelogin', "That code didn't work. Check the code and try again.", p.otc));
    const app = findApp(rec.clientId)!;
    const users = usersFor(registrationOf(ctx, app), rec.segment);
    const parsed: ParsedScopes = { graph: rec.scopes.filter((s) => !OIDC_SCOPES.includes(s)), oidc: rec.scopes.filter((s) => OIDC_SCOPES.includes(s)), resourceDefault: false };
    if (p.action === 'cancel') {
      rec.status = 'declined';
      return void res.type('html').send(renderMessagePage('Sign in canceled', 'You have declined the sign-in request on your device.'));
    }
    if (p.username !== undefined) {
      const found = findUser(p.username);
      const user = found && userFits(registrationOf(ctx, app), rec.segment, found) ? found : undefined;
      if (user && p.password === user.password) {
        rec.status = 'approved';
        rec.oid = user.oid;
        rec.sid = randomUUID();
        return void res.type('html').send(renderMessagePage(app.displayName,
          `You have signed in to the ${app.displayName} application on your device. You may now close this window.`));
      }
      const error = user
        ? `Your account or password is incorrect. (AADSTS50126: ${AADSTS[50126]()})`
        : `This username may be incorrect. (AADSTS50034: ${AADSTS[50034](p.username)})`;
      return void res.type('html').send(renderSignInPage({
        action: '/devicelogin', hidden: { otc: rec.userCode }, appName: app.displayName, permissions: describePermissions(parsed),
        loginHint: p.username, error, users, passwordHint: 'sandbox',
      }));
    }
    res.type('html').send(renderSignInPage({
      action: '/devicelogin', hidden: { otc: rec.userCode }, appName: app.displayName, permissions: describePermissions(parsed),
      users, passwordHint: 'sandbox',
    }));
  });

  return { api, browser };
}

/**
 * Entra's session cookie is `Secure; SameSite=None`. On the plain-HTTP loopback sign-in origin a browser may
 * refuse a `Secure` cookie, and `SameSite=None` requires `Secure`; `Lax` still comes along on the top-level
 * navigations that authorize is reached by, so single sign-on (prompt=none) works on either origin.
 */
function sessionCookieAttributes(req: Request): string {
  return req.secure ? 'Secure; HttpOnly; SameSite=None' : 'HttpOnly; SameSite=Lax';
}

function describePermissions(parsed: ParsedScopes): string[] {
  const out: string[] = [];
  if (parsed.oidc.includes('openid')) out.push('Sign you in (openid)');
  if (parsed.oidc.includes('profile')) out.push('View your basic profile (profile)');
  if (parsed.oidc.includes('email')) out.push('View your email address (email)');
  if (parsed.oidc.includes('offline_access')) out.push('Maintain access to data you have given it access to (offline_access)');
  for (const s of parsed.graph) out.push(`Microsoft Graph: ${s}`);
  return out;
}

function describeInjected(e: { error: string; aadsts?: number }): string {
  const known = e.aadsts !== undefined ? INJECTED_TEXTS[e.aadsts] : undefined;
  return known ?? `Injected ${e.error} error.`;
}

const INJECTED_TEXTS: Record<number, string> = {
  70008: AADSTS[70008](),
  50173: AADSTS[50173]('2024-01-01 00:00:00Z', '2024-02-01 00:00:00Z'),
  700082: AADSTS[700082]('2024-01-01 00:00:00Z'),
  65001: "The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource.",
  50076: "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000003-0000-0000-c000-000000000000'.",
  50079: 'Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access.',
  50078: 'Presented multi-factor authentication has expired due to policies configured by your administrator, you must refresh your multi-factor authentication to access.',
  70043: 'The refresh token has expired or is invalid due to sign-in frequency checks by conditional access.',
  53003: 'Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.',
  90094: 'The grant requires admin permission.',
  7000112: 'Application is disabled.',
  7000222: 'The provided client secret keys for app are expired. Visit the Azure portal to create new keys for your app.',
  500011: 'The resource principal named https://graph.microsoft.com was not found in the tenant.',
  50058: AADSTS[50058](),
  90033: 'A transient error has occurred. Please try again.',
};

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export { MSA_TENANT_ID };
