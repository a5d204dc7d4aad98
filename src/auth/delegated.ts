import type * as client from 'openid-client';
import type { Logger } from '../config/logger.ts';
import type { NotifySink } from '../notify/index.ts';
import { AgentError, RemoteError } from '../config/errors.ts';
import type { FetchLike } from '../config/transport.ts';
import type { Store } from '../store/index.ts';
import { classifyTokenError, MAY_CLEAR_RETRY_MS, type ClassifiedFailure } from './entra-errors.ts';
import { parseRetryAfter } from '../graph/retry-policy.ts';
import type { AccountInfo, AuthProblem, AuthStatus, TokenProvider } from './types.ts';

/** Personal Microsoft accounts sign in under this tenant id [entra-docs id-token-claims-reference]. */
export const MSA_TENANT_ID = '9188040d-6c67-4c5b-b112-36a304b66dad';

/** Delegated scopes. offline_access yields the refresh token; openid the id_token that names the account. */
export const DELEGATED_SCOPES = ['openid', 'profile', 'offline_access', 'User.Read', 'Mail.ReadWrite', 'Calendars.Read', 'MailboxSettings.Read', 'Mail.Send'];

/** Refresh this long before the access token's expiry, so a job never starts with a token about to die. */
const EXPIRY_MARGIN_MS = 5 * 60_000;

/** How long a process waits for another one's refresh before giving up (transiently) without refreshing. */
const REFRESH_LOCK_WAIT_MS = 60_000;

/** The steps of a refresh, in order; `trace` reports each (the crash tests kill a process at each). */
export type RefreshStep = 'lock-wait' | 'lock-acquired' | 'reused-rotated' | 'request' | 'response' | 'persisted' | 'released';

/**
 * openid-client (with jose and oauth4webapi under it) and src/auth/oidc.ts load when the agent first talks to the
 * identity provider: `status`, and a run whose access token is still fresh, never do (docs/BENCHMARKS.md).
 */
let openid: typeof import('openid-client') | undefined;
async function openidClient(): Promise<typeof import('openid-client')> {
  return (openid ??= await import('openid-client'));
}

export const KEYS = { account: 'auth:account', tokens: 'auth:tokens', problem: 'auth:problem', throttle: 'auth:throttle', clock: 'auth:clock' } as const;

/** How far this machine's clock was found from the identity provider's (seconds; positive: ours is behind). */
interface ClockOffset {
  skewSec: number;
  measuredAt: number;
}

/**
 * Token-endpoint throttling and outages (429, 5xx): retried within the refresh, after the server's
 * Retry-After (seconds or an HTTP date) or an exponential backoff, at most this many attempts and this
 * much waiting in all. A longer Retry-After is remembered in the store (`auth:throttle`), and no process
 * calls the token endpoint again before it has passed, as MSAL's ThrottlingUtils does [MICROSOFT.md].
 */
const TOKEN_RETRY = { attempts: 3, maxWaitMs: 30_000, baseMs: 1000 };

interface StoredTokens {
  refreshToken: string;
  accessToken?: string;
  accessTokenExpiresAt?: number;
  scope?: string;
  refreshTokenIssuedAt: number;
  lastRefreshAt: number;
}

export interface PendingSignin {
  state: string;
  nonce: string;
  codeVerifier: string;
  createdAt: number;
}

export interface DelegatedAuthOptions {
  clientId: string;
  clientSecret?: string;
  tenant: string;
  authorityHost: URL;
  redirectUri: URL;
  /** With MAILBOX set, only this user may sign in. */
  mailbox?: string;
  store: Store;
  fetch: FetchLike;
  log: Logger;
  /** The URL a person opens to sign in again; part of every remedy. */
  signinUrl: string;
  now?: () => number;
  scopes?: string[];
  /** Told when a person is needed (dead token, configuration) and when that is resolved. */
  notify?: NotifySink;
  /** KEEPALIVE_DAYS in ms: `keepAlive()` refreshes when the last refresh is older. Default 7 days. */
  keepAliveMs?: number;
  /** How long to wait before trying a kept refresh token again after a condition that may clear. Default 1 h. */
  mayClearRetryMs?: number;
  /** Observes the steps of each refresh (tests). */
  trace?: (step: RefreshStep) => void;
}

/**
 * Delegated sign-in (authorization code + PKCE) and the refresh token it yields.
 * Example:
 *   const { url, pending } = await auth.startSignin();   // redirect the browser to url, keep pending server-side
 *   await auth.completeSignin(callbackUrl, pending);      // stores the account and the encrypted tokens
 *   const token = await auth.getAccessToken();            // refreshes when needed
 */
export class DelegatedAuth implements TokenProvider {
  readonly mode = 'delegated' as const;
  private readonly opts: DelegatedAuthOptions;
  private readonly now: () => number;
  private readonly configs = new Map<string, Promise<client.Configuration>>();
  private refreshing?: Promise<StoredTokens>;
  /** The last successful token-endpoint answer of the refresh in progress (see recoverFromClockCheck). */
  private captured?: { text: string };
  private capturing = false;
  private readonly fetch: FetchLike;
  /** Measured distance to the provider's clock, applied to openid-client's id_token checks. */
  private providerSkewSec?: number;

  constructor(opts: DelegatedAuthOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.fetch = async (input, init) => {
      const response = await opts.fetch(input, init);
      // The first answer of a refresh is the token endpoint's (a JWKS fetch may follow it).
      if (this.capturing && response.ok && !this.captured) this.captured = { text: await response.clone().text() };
      return response;
    };
  }

  private scopes(): string {
    return (this.opts.scopes ?? DELEGATED_SCOPES).join(' ');
  }

  /**
   * Discovery is done once per tenant segment and reused; a failed discovery is retried next time.
   * With an injected clock (tests that jump months ahead), openid-client is told how far it is from the
   * process clock, so id_tokens stamped by a provider on that clock pass its iat/nbf checks; the
   * configuration is rebuilt when that distance changes. With the real clock the distance is always 0.
   */
  private async configFor(tenant: string): Promise<client.Configuration> {
    this.providerSkewSec ??= (await this.opts.store.get<ClockOffset>(KEYS.clock))?.skewSec ?? 0;
    const clockSkew = Math.round((this.now() - Date.now()) / 1000) + this.providerSkewSec;
    const cacheKey = `${tenant}@${clockSkew}`;
    let pending = this.configs.get(cacheKey);
    if (!pending) {
      for (const key of this.configs.keys()) if (key.startsWith(`${tenant}@`)) this.configs.delete(key);
      pending = import('./oidc.ts').then(({ discoverIssuer }) => discoverIssuer({ ...this.opts, fetch: this.fetch, tenant, clockSkew })).catch((cause) => {
        this.configs.delete(cacheKey);
        throw new AgentError('AUTH_TRANSIENT', `Cannot read the identity provider's metadata at ${this.opts.authorityHost.origin}/${tenant}/v2.0: ${(cause as Error).message}`, {
          remedy: 'Check MS_AUTHORITY_HOST and MS_TENANT, and that this machine reaches the identity provider (run mailbox-agent doctor).',
          cause,
        });
      });
      this.configs.set(cacheKey, pending);
    }
    return pending;
  }

  /** Where sign-in and refresh go: the pinned tenant once an account is known. */
  private async tenantSegment(): Promise<string> {
    const account = await this.opts.store.get<AccountInfo>(KEYS.account);
    return account ? pinnedSegment(account.tid) : this.opts.tenant;
  }

  async startSignin(): Promise<{ url: string; pending: PendingSignin }> {
    const config = await this.configFor(await this.tenantSegment());
    const [client, { buildAuthorizationUrl }] = await Promise.all([openidClient(), import('./oidc.ts')]);
    const codeVerifier = client.randomPKCECodeVerifier();
    const pending: PendingSignin = { state: client.randomState(), nonce: client.randomNonce(), codeVerifier, createdAt: this.now() };
    const account = await this.opts.store.get<AccountInfo>(KEYS.account);
    const params: Record<string, string> = {
      redirect_uri: this.opts.redirectUri.href,
      scope: this.scopes(),
      response_type: 'code',
      response_mode: 'query',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
      prompt: 'select_account',
    };
    const hint = this.opts.mailbox ?? account?.upn;
    if (hint) params.login_hint = hint;
    return { url: buildAuthorizationUrl(config, params).href, pending };
  }

  /**
   * Redeems the authorization response. Nothing is stored unless every check passes:
   * state, PKCE, nonce, id_token signature and issuer, MAILBOX restriction, same account as before.
   */
  async completeSignin(callbackUrl: URL, pending: PendingSignin): Promise<AccountInfo> {
    if (this.now() - pending.createdAt > 10 * 60_000) {
      throw new AgentError('SIGNIN_STATE_INVALID', 'This sign-in took longer than 10 minutes and has expired.', { remedy: `Start again: ${this.opts.signinUrl}`, status: 400 });
    }
    const error = callbackUrl.searchParams.get('error');
    if (error) {
      const description = callbackUrl.searchParams.get('error_description') ?? '';
      const failure = classifyTokenError({ error, error_description: description });
      await this.recordSigninConfigProblem(failure);
      throw new RemoteError('entra', 'SIGNIN_REFUSED', `Sign-in failed: ${description.split(/\r?\n/)[0] || error}`, {
        remedy: failure.kind === 'config' ? `${failure.remedy}.` : `Try again: ${this.opts.signinUrl}`,
        remoteCode: error,
        status: 400,
      });
    }
    const tenant = await this.tenantSegment();
    const config = await this.configFor(tenant);
    const client = await openidClient();
    let tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
    try {
      tokens = await client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
    } catch (cause) {
      throw await this.signinError(cause);
    }
    return this.acceptSignin(tokens);
  }

  /**
   * Device-code sign-in (RFC 8628) for a machine with no browser: `show` gets the URL and the code to
   * type there; polling follows the provider's interval (slow_down adds 5 s) until the person signs in,
   * declines, or the code expires [openid-client pollDeviceAuthorizationGrant]. The result is checked and
   * stored exactly like a browser sign-in.
   * Example: `await auth.deviceSignin((c) => console.log(c.message))`.
   */
  async deviceSignin(show: (code: { verificationUri: string; userCode: string; expiresInSec: number; message: string }) => void, options: { signal?: AbortSignal } = {}): Promise<AccountInfo> {
    const config = await this.configFor(await this.tenantSegment());
    const client = await openidClient();
    let authorization: Awaited<ReturnType<typeof client.initiateDeviceAuthorization>>;
    try {
      authorization = await client.initiateDeviceAuthorization(config, { scope: this.scopes(), ...(this.opts.mailbox ? { login_hint: this.opts.mailbox } : {}) });
    } catch (cause) {
      throw await this.signinError(cause);
    }
    const verificationUri = authorization.verification_uri;
    show({
      verificationUri,
      userCode: authorization.user_code,
      expiresInSec: authorization.expires_in,
      message: `To sign in, open ${verificationUri} in a browser on any device and enter the code ${authorization.user_code} (valid for ${Math.round(authorization.expires_in / 60)} minutes).`,
    });
    let tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
    try {
      tokens = await client.pollDeviceAuthorizationGrant(config, authorization, undefined, options.signal ? { signal: options.signal } : undefined);
    } catch (cause) {
      throw await this.deviceError(cause);
    }
    return this.acceptSignin(tokens);
  }

  private async deviceError(cause: unknown): Promise<AgentError> {
    const error = (cause as { error?: string }).error;
    const again = 'Run `mailbox-agent signin --device` again.';
    if (error === 'expired_token' || (cause as Error).name === 'TimeoutError') {
      return new RemoteError('entra', 'SIGNIN_REFUSED', 'The code expired before anyone signed in with it.', { remedy: again, cause, remoteCode: error, status: 400 });
    }
    if (error === 'authorization_declined' || error === 'access_denied') {
      return new RemoteError('entra', 'SIGNIN_REFUSED', 'The sign-in was declined on the device page.', { remedy: `${again} and choose to continue.`, cause, remoteCode: error, status: 400 });
    }
    if ((cause as Error).name === 'AbortError') {
      return new AgentError('SIGNIN_REFUSED', 'The device sign-in was cancelled.', { remedy: again, cause, status: 400 });
    }
    return this.signinError(cause);
  }

  /** The checks every sign-in passes before anything is stored: id_token, MAILBOX, same account, a refresh token. */
  private async acceptSignin(tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers): Promise<AccountInfo> {
    const claims = tokens.claims();
    if (!claims) throw new AgentError('SIGNIN_REFUSED', 'The identity provider returned no id_token.', { remedy: 'Check that the app may request the openid scope.', status: 400 });
    const account = accountFromClaims(claims, this.now());
    if (this.opts.mailbox && account.upn.toLowerCase() !== this.opts.mailbox.toLowerCase()) {
      throw new AgentError('SIGNIN_REFUSED', `${account.upn} signed in, but this agent is set up for ${this.opts.mailbox} only (MAILBOX).`, {
        remedy: `Sign in as ${this.opts.mailbox}, or change MAILBOX in .env.`,
        status: 403,
      });
    }
    const existing = await this.opts.store.get<AccountInfo>(KEYS.account);
    if (existing && existing.oid !== account.oid) {
      throw new AgentError('SIGNIN_REFUSED', `${account.upn} signed in, but the agent already belongs to ${existing.upn}.`, {
        remedy: 'Run `mailbox-agent signout` (or use Sign out on the dashboard) first if you want to switch accounts.',
        status: 409,
      });
    }
    if (!tokens.refresh_token) {
      throw new AgentError('SIGNIN_REFUSED', 'The identity provider returned no refresh token, so the agent could not run unattended.', {
        remedy: 'Make sure the app may request offline_access, then sign in again.',
        status: 400,
      });
    }
    const now = this.now();
    await this.opts.store.setSecret<StoredTokens>(KEYS.tokens, {
      refreshToken: tokens.refresh_token,
      accessToken: tokens.access_token,
      accessTokenExpiresAt: expiresAt(tokens, now),
      scope: tokens.scope,
      refreshTokenIssuedAt: now,
      lastRefreshAt: now,
    });
    await this.opts.store.set(KEYS.account, existing ? { ...account, signedInAt: now } : account);
    await this.opts.store.delete(KEYS.problem);
    await this.opts.notify?.resolve('auth', { reason: `${account.upn} signed in again.` });
    this.opts.log.info({ upn: account.upn, tid: account.tid }, 'signed in');
    return account;
  }

  async getAccessToken(options: { forceRefresh?: boolean } = {}): Promise<string> {
    const stored = await this.loadTokens();
    if (!options.forceRefresh && stored.accessToken && isFresh(stored, this.now())) return stored.accessToken;
    await this.refuseUntilRetry();
    const refreshed = await this.refresh();
    return refreshed.accessToken!;
  }

  /**
   * While a condition that may clear by itself (a Conditional Access block, an MFA demand) holds the kept
   * refresh token, the token endpoint is asked again only from `retryAt` on, so a blocked account is not
   * hammered every five minutes; until then, the same reason.
   */
  private async refuseUntilRetry(): Promise<void> {
    const problem = await this.opts.store.get<AuthProblem>(KEYS.problem);
    if (problem?.retryAt !== undefined && this.now() < problem.retryAt) {
      throw new AgentError('NEEDS_SIGNIN', problem.reason, { remedy: problem.remedy, status: 401 });
    }
  }

  /** One refresh at a time in this process: concurrent callers share the in-flight one. */
  refresh(): Promise<StoredTokens> {
    this.refreshing ??= this.refreshOnce().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /**
   * Refreshes under the store's lock, so no two processes sharing the store ever spend one refresh token.
   * Inside the lock the tokens are read again: if another process rotated them meanwhile, its access token
   * is used and nothing is spent. The rotated refresh token is persisted before the lock is released and
   * before the new access token is handed to anyone, so a crash at any point leaves the store holding
   * either the new refresh token or the previous one (which Entra still accepts: it does not revoke on rotation).
   */
  private async refreshOnce(): Promise<StoredTokens> {
    const seen = await this.loadTokens();
    const config = await this.configFor(await this.tenantSegment());
    this.opts.trace?.('lock-wait');
    let release: () => Promise<void>;
    try {
      release = await this.opts.store.lock.acquire('auth-refresh', { waitMs: REFRESH_LOCK_WAIT_MS });
    } catch (cause) {
      throw new AgentError('AUTH_TRANSIENT', `Refreshing the token failed for now: ${(cause as Error).message}`, { remedy: (cause as AgentError).remedy, cause });
    }
    try {
      this.opts.trace?.('lock-acquired');
      const stored = await this.loadTokens();
      if (stored.refreshToken !== seen.refreshToken && stored.accessToken && isFresh(stored, this.now())) {
        // Another process refreshed while we waited: use its tokens, spend nothing.
        this.opts.trace?.('reused-rotated');
        return stored;
      }
      return await this.redeem(config, stored);
    } finally {
      await release().catch((error) => this.opts.log.warn({ reason: (error as Error).message }, 'could not release the refresh lock'));
      this.opts.trace?.('released');
    }
  }

  private async redeem(config: client.Configuration, stored: StoredTokens): Promise<StoredTokens> {
    const throttle = await this.opts.store.get<{ until: number; status: number }>(KEYS.throttle);
    if (throttle && throttle.until > this.now()) {
      throw new AgentError('AUTH_TRANSIENT', `Refreshing the token failed for now: the identity provider answered HTTP ${throttle.status} and asked the agent to wait until ${new Date(throttle.until).toISOString()}.`, {
        remedy: 'Nothing to do: the agent tries again after that time.',
      });
    }
    const client = await openidClient();
    let response: client.TokenEndpointResponse;
    let waitedMs = 0;
    for (let attempt = 1; ; attempt++) {
      this.opts.trace?.('request');
      this.captured = undefined;
      this.capturing = true;
      try {
        response = await client.refreshTokenGrant(config, stored.refreshToken, { scope: this.scopes() });
        break;
      } catch (cause) {
        const recovered = await this.recoverFromClockCheck(cause);
        if (recovered) {
          response = recovered;
          break;
        }
        const pause = await this.pauseAfter(cause, attempt, waitedMs);
        if (pause === undefined) throw await this.refreshError(cause);
        waitedMs += pause;
      } finally {
        this.capturing = false;
      }
    }
    // (A cast: TypeScript cannot see that the fetch wrapper set it during the call.)
    const answer = this.captured as { text: string } | undefined;
    this.captured = undefined;
    if (answer) await this.noteClock(answer.text);
    if (throttle) await this.opts.store.delete(KEYS.throttle);
    this.opts.trace?.('response');
    const now = this.now();
    const next: StoredTokens = {
      // Entra rotates the refresh token on every use; keep the old one only if none came back.
      refreshToken: response.refresh_token ?? stored.refreshToken,
      accessToken: response.access_token,
      accessTokenExpiresAt: expiresAt(response, now),
      scope: response.scope ?? stored.scope,
      refreshTokenIssuedAt: response.refresh_token ? now : stored.refreshTokenIssuedAt,
      lastRefreshAt: now,
    };
    // Persist the rotated refresh token (one write, tokens together) before anyone uses the new access token.
    await this.opts.store.setSecret(KEYS.tokens, next);
    this.opts.trace?.('persisted');
    await this.opts.store.delete(KEYS.problem);
    await this.opts.notify?.resolve('auth');
    this.opts.log.debug('access token refreshed');
    return next;
  }

  /**
   * A refresh whose id_token failed openid-client's time checks (iat/nbf/exp beyond 30 s) because this
   * machine's clock is off: the token endpoint, reached over TLS, did answer with new tokens, and Entra
   * rotated the refresh token. Throwing that answer away would keep failing every refresh (and, with a
   * provider that detects reuse, spend the old token twice). So the answer is kept, the clock distance is
   * measured from the id_token's `iat` and remembered (store key auth:clock) so later checks allow for it,
   * and a person is told to fix the clock.
   */
  private async recoverFromClockCheck(cause: unknown): Promise<client.TokenEndpointResponse | undefined> {
    if ((cause as { code?: string }).code !== 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED' || !this.captured) return undefined;
    let body: client.TokenEndpointResponse & { id_token?: string };
    try {
      body = JSON.parse(this.captured.text) as typeof body;
    } catch {
      return undefined;
    }
    if (typeof body.access_token !== 'string' || typeof body.refresh_token !== 'string') return undefined;
    if (!(await this.noteClock(this.captured.text))) return undefined;
    this.captured = undefined;
    return body;
  }

  /**
   * Measures the distance to the provider's clock from a token response's id_token `iat` (issued "now" by the
   * provider) and remembers it when it moved by more than openid-client's 30 s tolerance. Returns whether a
   * measurement was possible.
   */
  private async noteClock(tokenResponseText: string): Promise<boolean> {
    let iat: number;
    try {
      const idToken = (JSON.parse(tokenResponseText) as { id_token?: unknown }).id_token;
      if (typeof idToken !== 'string') return false;
      iat = Number((JSON.parse(Buffer.from(idToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iat?: unknown }).iat);
    } catch {
      return false;
    }
    if (!Number.isFinite(iat)) return false;
    // Against the process clock: the injected test clock is already allowed for in configFor.
    const skewSec = Math.round(iat - this.now() / 1000);
    const known = this.providerSkewSec ?? 0;
    if (Math.abs(skewSec - known) <= 30) return true;
    this.providerSkewSec = skewSec;
    await this.opts.store.set<ClockOffset>(KEYS.clock, { skewSec, measuredAt: this.now() });
    if (Math.abs(skewSec) > 30) {
      this.opts.log.warn(
        { skewSec },
        `this machine's clock is ${Math.abs(skewSec)} s ${skewSec > 0 ? 'behind' : 'ahead of'} the identity provider's; the agent allows for it, but fix the clock (e.g. timedatectl set-ntp true)`,
      );
    } else {
      this.opts.log.info({ skewSec }, "this machine's clock agrees with the identity provider's again");
    }
    return true;
  }

  /**
   * After a 429 or 5xx from the token endpoint (the server did not redeem the token, so sending it again
   * spends nothing): waits its Retry-After or a backoff and returns how long, or returns undefined when
   * the refresh should fail for now. A Retry-After beyond the budget is stored, so no process asks before.
   */
  private async pauseAfter(cause: unknown, attempt: number, waitedMs: number): Promise<number | undefined> {
    const response = responseOf(cause);
    if (!response || !(response.status === 429 || response.status >= 500)) return undefined;
    const told = parseRetryAfter(response.headers.get('retry-after'), this.now());
    const delay = told ?? Math.round(TOKEN_RETRY.baseMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2));
    if (attempt >= TOKEN_RETRY.attempts || waitedMs + delay > TOKEN_RETRY.maxWaitMs) {
      if (told !== undefined && told > 0) await this.opts.store.set(KEYS.throttle, { until: this.now() + told, status: response.status });
      return undefined;
    }
    this.opts.log.warn({ status: response.status, retryInMs: delay, attempt }, 'the token endpoint is busy; retrying the refresh');
    await new Promise((resolve) => setTimeout(resolve, delay));
    return delay;
  }

  /**
   * Refreshes when the last successful refresh is KEEPALIVE_DAYS old, so the refresh token never reaches
   * Entra's fixed 90-day inactivity limit while the agent runs, even if no job needs a token.
   * Example: `setInterval(() => auth.keepAlive(), 3_600_000)` (the server does this).
   */
  async keepAlive(): Promise<'refreshed' | 'not-due' | 'signed-out'> {
    const tokens = await this.opts.store.getSecret<StoredTokens>(KEYS.tokens);
    if (!tokens) return 'signed-out';
    const problem = await this.opts.store.get<AuthProblem>(KEYS.problem);
    // A kept token blocked by a condition that may clear is tried again when due, so the agent recovers alone.
    const retryDue = problem?.retryAt !== undefined && this.now() >= problem.retryAt;
    if (!retryDue && problem?.retryAt !== undefined) return 'not-due';
    if (!retryDue && this.now() < tokens.lastRefreshAt + this.keepAliveMs()) return 'not-due';
    const before = tokens.lastRefreshAt;
    const after = await this.refresh();
    this.opts.log.info({ lastRefreshAt: new Date(after.lastRefreshAt).toISOString(), previous: new Date(before).toISOString() }, 'keep-alive refresh');
    return 'refreshed';
  }

  private keepAliveMs(): number {
    return this.opts.keepAliveMs ?? 7 * 86_400_000;
  }

  private async loadTokens(): Promise<StoredTokens> {
    const tokens = await this.opts.store.getSecret<StoredTokens>(KEYS.tokens);
    if (tokens) return tokens;
    const problem = await this.opts.store.get<AuthProblem>(KEYS.problem);
    if (problem) {
      throw new AgentError(problem.kind === 'config' ? 'AUTH_CONFIG' : 'NEEDS_SIGNIN', problem.reason, { remedy: problem.remedy, status: 401 });
    }
    throw new AgentError('SIGNED_OUT', 'Nobody is signed in.', { remedy: `Sign in: ${this.opts.signinUrl}`, status: 401 });
  }

  private async refreshError(cause: unknown): Promise<AgentError> {
    const failure = classifyClientError(cause);
    if (failure.kind === 'transient') {
      return new RemoteError('entra', 'AUTH_TRANSIENT', `Refreshing the token failed for now: ${failure.reason}`, { remedy: failure.remedy, cause, remoteCode: failure.error });
    }
    const account = await this.opts.store.get<AccountInfo>(KEYS.account);
    const filled = failure.remedy.replace('{tenant}', account?.tid ?? this.opts.tenant).replace('{clientId}', this.opts.clientId);
    if (failure.mayClear) {
      const retryAt = this.now() + (this.opts.mayClearRetryMs ?? MAY_CLEAR_RETRY_MS);
      const remedy = `${filled}: ${this.opts.signinUrl}. The sign-in is kept: the agent tries again by itself at ${new Date(retryAt).toISOString()} and hourly after that, and resumes when the condition clears.`;
      await this.opts.store.set(KEYS.problem, { kind: 'needs-signin', reason: failure.reason, remedy, aadsts: failure.aadsts, error: failure.error, at: this.now(), retryAt } satisfies AuthProblem);
      await this.opts.notify?.raise('auth', { event: 'needs-signin', reason: failure.reason, remedy });
      this.opts.log.warn({ reason: failure.reason, aadsts: failure.aadsts, retryAt: new Date(retryAt).toISOString() }, 'the refresh was refused for a reason that may clear; the token is kept');
      return new RemoteError('entra', 'NEEDS_SIGNIN', failure.reason, { remedy, cause, remoteCode: failure.error, status: 401 });
    }
    const remedy = failure.kind === 'needs-signin' ? `${filled}: ${this.opts.signinUrl}` : `${filled}.`;
    const problem: AuthProblem = { kind: failure.kind, reason: failure.reason, remedy, aadsts: failure.aadsts, error: failure.error, at: this.now() };
    await this.opts.store.set(KEYS.problem, problem);
    await this.opts.notify?.raise('auth', { event: failure.kind === 'needs-signin' ? 'needs-signin' : 'auth-config', reason: failure.reason, remedy });
    if (failure.kind === 'needs-signin') {
      // The grant is dead: keep its error, not the token.
      await this.opts.store.delete(KEYS.tokens);
      this.opts.log.warn({ reason: failure.reason, aadsts: failure.aadsts }, 'a new sign-in is needed');
      return new RemoteError('entra', 'NEEDS_SIGNIN', failure.reason, { remedy, cause, remoteCode: failure.error, status: 401 });
    }
    this.opts.log.error({ reason: failure.reason, aadsts: failure.aadsts }, 'the identity provider refused the configuration');
    return new RemoteError('entra', 'AUTH_CONFIG', failure.reason, { remedy, cause, remoteCode: failure.error });
  }

  private async signinError(cause: unknown): Promise<AgentError> {
    const failure = classifyClientError(cause);
    const code = (cause as { code?: string }).code;
    if (code === 'OAUTH_INVALID_RESPONSE' || code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' || code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') {
      // openid-client's message does not say which check failed; oauth4webapi's error under it names the claim.
      const claim = (cause as { cause?: { cause?: { claim?: unknown } } }).cause?.cause?.claim;
      const why = claim === 'nonce' ? 'the ID token carries another nonce than this sign-in sent (the response was made for another sign-in, or changed on the way)'
        : typeof claim === 'string' ? `the ID token's "${claim}" claim is not what this sign-in expects` : (cause as Error).message;
      return new AgentError('SIGNIN_STATE_INVALID', `The sign-in response failed a security check: ${why}.`, { remedy: `Start again: ${this.opts.signinUrl}`, cause, status: 400 });
    }
    await this.recordSigninConfigProblem(failure);
    return new RemoteError('entra', 'SIGNIN_REFUSED', `Sign-in failed: ${failure.reason}`, {
      remedy: failure.kind === 'config' ? `${failure.remedy}.` : `Try again: ${this.opts.signinUrl}`,
      cause,
      remoteCode: failure.error,
      status: 400,
    });
  }

  /**
   * A sign-in refused because of the app registration or the configuration (AADSTS7000218, 50194, 9002327, …):
   * until a sign-in succeeds, status says needs-config with the fix, never a sign-in that would fail the same way.
   * An agent that still holds working tokens keeps running: its state is left alone.
   */
  private async recordSigninConfigProblem(failure: ClassifiedFailure): Promise<void> {
    if (failure.kind !== 'config') return;
    const tokens = await this.opts.store.getSecret<StoredTokens>(KEYS.tokens).catch(() => undefined);
    if (tokens) return;
    const remedy = `${failure.remedy.replace('{tenant}', this.opts.tenant).replace('{clientId}', this.opts.clientId)}.`;
    await this.opts.store.set(KEYS.problem, { kind: 'config', reason: failure.reason, remedy, aadsts: failure.aadsts, error: failure.error, at: this.now() } satisfies AuthProblem);
  }

  async status(): Promise<AuthStatus> {
    const account = (await this.opts.store.get<AccountInfo>(KEYS.account)) ?? null;
    const problem = await this.opts.store.get<AuthProblem>(KEYS.problem);
    let tokens: StoredTokens | undefined;
    try {
      tokens = await this.opts.store.getSecret<StoredTokens>(KEYS.tokens);
    } catch (error) {
      return { mode: 'delegated', state: 'needs-signin', account: publicAccount(account), reason: (error as AgentError).message, remedy: (error as AgentError).remedy };
    }
    if (tokens && problem?.retryAt !== undefined) {
      return {
        mode: 'delegated', state: 'needs-signin', account: publicAccount(account), reason: problem.reason, remedy: problem.remedy,
        nextAttemptAt: new Date(Math.max(this.now(), problem.retryAt)).toISOString(),
      };
    }
    if (tokens && !(problem && problem.kind === 'config')) {
      return {
        mode: 'delegated',
        state: 'ready',
        account: publicAccount(account),
        accessTokenExpiresAt: tokens.accessTokenExpiresAt ? new Date(tokens.accessTokenExpiresAt).toISOString() : undefined,
        ...(tokens.scope ? { grantedScopes: tokens.scope.split(/\s+/).filter(Boolean) } : {}),
        lastRefreshAt: new Date(tokens.lastRefreshAt).toISOString(),
        refreshTokenIssuedAt: new Date(tokens.refreshTokenIssuedAt).toISOString(),
        refreshTokenAgeDays: Math.max(0, Math.round(((this.now() - tokens.refreshTokenIssuedAt) / 86_400_000) * 10) / 10),
        nextKeepAliveAt: new Date(Math.max(this.now(), tokens.lastRefreshAt + this.keepAliveMs())).toISOString(),
      };
    }
    if (problem) return { mode: 'delegated', state: problem.kind === 'config' ? 'needs-config' : 'needs-signin', account: publicAccount(account), reason: problem.reason, remedy: problem.remedy };
    return { mode: 'delegated', state: 'signed-out', account: null, remedy: `Sign in: ${this.opts.signinUrl}` };
  }

  /** Forgets every token of the account; the account record goes too, so another user may sign in. */
  async signout(): Promise<AccountInfo | undefined> {
    const account = await this.opts.store.get<AccountInfo>(KEYS.account);
    await this.opts.store.delete(KEYS.tokens);
    await this.opts.store.delete(KEYS.problem);
    await this.opts.store.delete(KEYS.account);
    await this.opts.notify?.resolve('auth', { event: 'signed-out', reason: `${account?.upn ?? 'The account'} was signed out by a person.`, remedy: `Sign in to resume the jobs: ${this.opts.signinUrl}` });
    this.opts.log.info({ upn: account?.upn }, 'signed out');
    return account;
  }

  async account(): Promise<AccountInfo | undefined> {
    return this.opts.store.get<AccountInfo>(KEYS.account);
  }
}

/**
 * A cached access token is reused until EXPIRY_MARGIN_MS before it expires, or until half its lifetime is
 * left when it was issued for less than twice that margin, so a short-lived token is not refreshed on every call.
 */
function isFresh(tokens: StoredTokens, now: number): boolean {
  if (!tokens.accessTokenExpiresAt) return false;
  const lifetime = tokens.accessTokenExpiresAt - tokens.lastRefreshAt;
  const margin = Math.min(EXPIRY_MARGIN_MS, Math.max(0, lifetime / 2));
  return now < tokens.accessTokenExpiresAt - margin;
}

/** Personal Microsoft accounts are pinned to `consumers`; work accounts to their tenant GUID. */
export function pinnedSegment(tid: string): string {
  return tid === MSA_TENANT_ID ? 'consumers' : tid;
}

function accountFromClaims(claims: client.IDToken, now: number): AccountInfo {
  const str = (k: string) => (typeof claims[k] === 'string' ? (claims[k] as string) : undefined);
  const oid = str('oid') ?? claims.sub;
  const tid = str('tid');
  const upn = str('preferred_username') ?? str('email') ?? str('upn');
  if (!tid || !upn) {
    throw new AgentError('SIGNIN_REFUSED', `The id_token lacks ${!tid ? 'tid' : 'preferred_username'}, which the agent needs to pin the account.`, {
      remedy: 'Request the profile scope and use a v2.0 endpoint.',
      status: 400,
    });
  }
  return { upn, oid, tid, name: str('name'), signedInAt: now };
}

function publicAccount(account: AccountInfo | null): AuthStatus['account'] {
  return account ? { upn: account.upn, oid: account.oid, tid: account.tid } : null;
}

function expiresAt(tokens: client.TokenEndpointResponse, now: number): number | undefined {
  // expires_in may arrive as a string (MSAL parses both) [msal-common ResponseHandler].
  const seconds = Number(tokens.expires_in);
  return Number.isFinite(seconds) && seconds > 0 ? now + seconds * 1000 : undefined;
}

/** The HTTP response behind an openid-client error, when the server answered at all. */
function responseOf(cause: unknown): Response | undefined {
  if (openid && cause instanceof openid.ResponseBodyError) return cause.response;
  // Not `instanceof Response`: the transport may be undici's own fetch, whose Response is another class.
  const inner = (cause as { cause?: { status?: unknown; headers?: { get?: unknown } } }).cause;
  return inner && typeof inner.status === 'number' && typeof inner.headers?.get === 'function' ? (inner as unknown as Response) : undefined;
}

/**
 * Maps openid-client errors to a failure class: the server said no (body) vs network vs our own check.
 * (An openid-client error exists only once openid-client is loaded.)
 */
export function classifyClientError(cause: unknown): ClassifiedFailure {
  if (openid && cause instanceof openid.ResponseBodyError) {
    return classifyTokenError(cause.cause as Record<string, unknown>, cause.status);
  }
  if (openid && cause instanceof openid.AuthorizationResponseError) {
    return classifyTokenError({ error: cause.error, error_description: cause.error_description });
  }
  const code = (cause as { code?: string }).code ?? '';
  const status = ((cause as { cause?: { status?: number } }).cause?.status);
  if (typeof status === 'number') return classifyTokenError(undefined, status);
  if (code.startsWith('OAUTH_JWT') || code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' || code === 'OAUTH_INVALID_RESPONSE') {
    return { kind: 'config', reason: `The identity provider's response failed a check: ${(cause as Error).message}`, remedy: 'Check MS_AUTHORITY_HOST and MS_TENANT (run mailbox-agent doctor)' };
  }
  return { kind: 'transient', reason: `The identity provider could not be reached (${(cause as Error).message})`, remedy: 'Nothing to do: the agent retries' };
}
