import {
  ConfidentialClientApplication, LogLevel, type ICachePlugin, type INetworkModule, type NetworkRequestOptions, type NetworkResponse,
  type TokenCacheContext,
} from '@azure/msal-node';
import type { Config } from '../config/index.ts';
import { AgentError } from '../config/errors.ts';
import type { JobsFile } from '../config/jobs-file.ts';
import type { Logger } from '../config/logger.ts';
import type { FetchLike } from '../config/transport.ts';
import { GraphClient } from '../graph/client.ts';
import type { RequestBudget } from '../graph/request-budget.ts';
import type { Store } from '../store/index.ts';
import { expiryWarning, loadCertificate, type LoadedCertificate } from './certificates.ts';
import { ConfinementGuard, confinedTokens, type ConfinementNotify } from './confinement.ts';
import { classifyTokenError } from './entra-errors.ts';
import { requiredPermissions, type RequiredPermissions } from './permissions.ts';
import type { AuthProblem, AuthStatus, TokenProvider } from './types.ts';

/**
 * App-only auth: client credentials through msal-node's ConfidentialClientApplication, with a certificate
 * (PS256 + x5t#S256, preferred) or a secret. The token is for `{graph origin}/.default`; msal keeps it in its
 * cache until 5 minutes before expiry, and that cache lives in our encrypted store through a cache plugin.
 *
 * Hosts: msal-node would ask login.microsoftonline.com for instance discovery about any authority it does not
 * know. `knownAuthorities: [host of MS_AUTHORITY_HOST]` makes it trust the configured host as is, so the only
 * requests go to that host (tenant metadata, token endpoint). All of them go through `networkClient`, built on
 * our `createFetch`, so the sandbox CA stays trusted for the sandbox origin only.
 */

export interface AppOnlyAuthOptions {
  clientId: string;
  /** Tenant GUID or verified domain: client credentials need a real tenant, never common/organizations. */
  tenant: string;
  authorityHost: URL;
  graphUrl: URL;
  mailbox: string;
  certPath?: string;
  keyPath?: string;
  clientSecret?: string;
  /** Known expiry of the secret (MS_CLIENT_SECRET_EXPIRES), for the 30-day warning. */
  secretExpiresAt?: Date;
  store: Store;
  fetch: FetchLike;
  log: Logger;
  now?: () => number;
}

/**
 * What the agent knows of its app token without reading it: access tokens are opaque to clients
 * (docs/microsoft-notes.md "Access tokens are opaque"), so nothing here comes from decoding one.
 */
export interface AppTokenFacts {
  tid: string;
  expiresAt: string;
  obtainedAt: string;
}

export interface CredentialInfo {
  kind: 'certificate' | 'secret';
  thumbprintSha256?: string;
  thumbprintSha1?: string;
  expiresAt?: string;
  /** Set within 30 days of expiry. */
  warning?: string;
}

const CACHE_KEY = 'app-only:msal-cache';
const LAST_KEY = 'app-only:last-token';
const PROBLEM_KEY = 'app-only:problem';
const GENERIC_TENANTS = new Set(['common', 'organizations']);
/** `consumers` and the tenant id of every personal Microsoft account (docs/microsoft-notes.md "Personal accounts"). */
const PERSONAL_ACCOUNT_TENANTS = new Set(['consumers', '9188040d-6c67-4c5b-b112-36a304b66dad']);

/**
 * Example:
 *   const auth = new AppOnlyAuth({ clientId, tenant: 'contoso.onmicrosoft.com', authorityHost, graphUrl, mailbox, certPath, keyPath, store, fetch, log });
 *   const token = await auth.getAccessToken();
 */
export class AppOnlyAuth implements TokenProvider {
  readonly mode = 'app-only' as const;
  readonly scope: string;
  readonly credential: CredentialInfo;
  private readonly opts: AppOnlyAuthOptions;
  private readonly now: () => number;
  private msal: ConfidentialClientApplication;
  private readonly newMsal: () => ConfidentialClientApplication;
  /** Every host msal-node asked for, for tests and doctor: it must only ever be MS_AUTHORITY_HOST's. */
  readonly hostsContacted = new Set<string>();

  constructor(opts: AppOnlyAuthOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    if (PERSONAL_ACCOUNT_TENANTS.has(opts.tenant.toLowerCase())) {
      throw new AgentError('CONFIG_INVALID', `MS_TENANT is "${opts.tenant}": personal Microsoft accounts (Outlook.com, Hotmail) have no app-only access; client credentials exist only in a work or school tenant.`, {
        remedy: 'For an Outlook.com mailbox use AUTH_MODE=delegated (the default) and sign in once; app-only needs a Microsoft 365 work or school tenant.',
      });
    }
    if (GENERIC_TENANTS.has(opts.tenant.toLowerCase())) {
      throw new AgentError('CONFIG_INVALID', `MS_TENANT is "${opts.tenant}", but app-only tokens are issued by one tenant.`, {
        remedy: 'Set MS_TENANT to your tenant GUID or verified domain (contoso.onmicrosoft.com); mailbox-agent doctor resolves a domain to its GUID.',
      });
    }
    this.scope = `${opts.graphUrl.origin}/.default`;
    let cert: LoadedCertificate | undefined;
    if (opts.certPath && opts.keyPath) {
      cert = loadCertificate(opts.certPath, opts.keyPath, this.now());
      this.credential = {
        kind: 'certificate', thumbprintSha256: cert.thumbprintSha256, thumbprintSha1: cert.thumbprintSha1, expiresAt: cert.notAfter.toISOString(),
        warning: expiryWarning(`The certificate ${cert.thumbprintSha1} (MS_CLIENT_CERT)`, cert.notAfter, this.now()),
      };
    } else if (opts.clientSecret) {
      this.credential = {
        kind: 'secret', expiresAt: opts.secretExpiresAt?.toISOString(),
        warning: opts.secretExpiresAt ? expiryWarning('The client secret (MS_CLIENT_SECRET)', opts.secretExpiresAt, this.now()) : undefined,
      };
    } else {
      throw new AgentError('CONFIG_INVALID', 'app-only needs a credential.', { remedy: 'Set MS_CLIENT_CERT and MS_CLIENT_KEY (mailbox-agent cert create), or MS_CLIENT_SECRET.' });
    }
    const host = opts.authorityHost.host;
    this.newMsal = () => new ConfidentialClientApplication({
      auth: {
        clientId: opts.clientId,
        authority: `${opts.authorityHost.origin}/${opts.tenant}`,
        knownAuthorities: [host],
        ...(cert
          ? { clientCertificate: { thumbprintSha256: cert.thumbprintSha256, privateKey: cert.privateKeyPem, x5c: cert.certPem } }
          : { clientSecret: opts.clientSecret }),
      },
      cache: { cachePlugin: storeCachePlugin(opts.store) },
      system: {
        networkClient: networkClientOver(opts.fetch, this.hostsContacted),
        loggerOptions: {
          piiLoggingEnabled: false,
          logLevel: LogLevel.Warning,
          loggerCallback: (_level, message) => opts.log.debug({ msal: message }, 'msal'),
        },
      },
    });
    this.msal = this.newMsal();
  }

  async getAccessToken(options: { forceRefresh?: boolean } = {}): Promise<string> {
    let result;
    try {
      result = await this.msal.acquireTokenByClientCredential({ scopes: [this.scope], skipCache: options.forceRefresh === true });
    } catch (error) {
      throw await this.fail(error);
    }
    if (!result?.accessToken) throw await this.fail(new Error('the token endpoint returned no access token'));
    const facts: AppTokenFacts = {
      tid: result.tenantId || this.opts.tenant,
      expiresAt: (result.expiresOn ?? new Date(this.now() + 3600_000)).toISOString(),
      obtainedAt: new Date(this.now()).toISOString(),
    };
    const last = await this.opts.store.get<AppTokenFacts>(LAST_KEY);
    if (!last || last.expiresAt !== facts.expiresAt) {
      await this.opts.store.set(LAST_KEY, facts);
      await this.opts.store.delete(PROBLEM_KEY);
    }
    return result.accessToken;
  }

  /** The last token's non-secret facts (tenant, expiry), from the token response, never from the token. */
  async lastToken(): Promise<AppTokenFacts | undefined> {
    return this.opts.store.get<AppTokenFacts>(LAST_KEY);
  }

  /**
   * `account` keeps the contract's shape: `upn` is MAILBOX (the one mailbox the app acts on), `tid` the tenant;
   * `oid` is empty: it would name the app's service principal, which only the (opaque) access token carries.
   */
  async status(): Promise<AuthStatus> {
    let error: unknown;
    try {
      await this.getAccessToken();
    } catch (caught) {
      error = caught;
    }
    const last = await this.lastToken();
    const account = { upn: this.opts.mailbox, oid: '', tid: last?.tid ?? this.opts.tenant };
    if (error && (error as AgentError).code === 'AUTH_TRANSIENT') {
      // A passing network fault is not a person's problem: the next call retries.
      return { mode: 'app-only', state: 'ready', account, reason: (error as Error).message, remedy: (error as AgentError).remedy, accessTokenExpiresAt: last?.expiresAt, lastRefreshAt: last?.obtainedAt };
    }
    if (error) {
      const problem = await this.opts.store.get<AuthProblem>(PROBLEM_KEY);
      // Nobody signs in in app-only mode: every refusal is the credential's or the registration's (needs-config).
      return {
        mode: 'app-only', state: 'needs-config', account,
        reason: problem?.reason ?? (error as Error).message, remedy: problem?.remedy ?? (error as AgentError).remedy,
      };
    }
    return { mode: 'app-only', state: 'ready', account, accessTokenExpiresAt: last?.expiresAt, lastRefreshAt: last?.obtainedAt };
  }

  /** Forgets the cached app token and its facts (the credential itself stays in .env). */
  async signout(): Promise<void> {
    await this.opts.store.delete(CACHE_KEY);
    await this.opts.store.delete(LAST_KEY);
    await this.opts.store.delete(PROBLEM_KEY);
    // msal's in-memory cache has no "forget the app token": a new application object starts empty.
    this.msal = this.newMsal();
  }

  private async fail(error: unknown): Promise<AgentError> {
    const e = error as { errorCode?: string; errorMessage?: string; status?: number; message?: string };
    const isServer = typeof e.errorCode === 'string' && /AADSTS\d+|invalid_|unauthorized_client|temporarily_unavailable|server_error/.test(`${e.errorCode} ${e.errorMessage ?? ''}`);
    if (!isServer) {
      // Network faults and msal's own client errors (unreachable authority, bad metadata) are not the credential's fault.
      const transient = /network|fetch|ECONN|ETIMEDOUT|timed out|endpoints_resolution/i.test(`${e.errorCode ?? ''} ${e.message ?? ''}`);
      return new AgentError(transient ? 'AUTH_TRANSIENT' : 'AUTH_CONFIG', `Could not get an app-only token from ${this.opts.authorityHost.origin}: ${e.errorMessage || e.message || String(error)}`, {
        remedy: transient ? 'Nothing to do if this is a passing network fault: the agent retries.' : 'Check MS_AUTHORITY_HOST, MS_TENANT and MS_CLIENT_ID.',
        cause: error,
      });
    }
    const c = classifyTokenError({ error: e.errorCode, error_description: e.errorMessage }, e.status && e.status >= 500 ? e.status : undefined);
    const remedy = c.remedy.replace('{tenant}', this.opts.tenant).replace('{clientId}', this.opts.clientId);
    const reason = `${c.reason}${c.aadsts ? ` (AADSTS${c.aadsts})` : ''}`;
    if (c.kind !== 'transient') {
      await this.opts.store.set(PROBLEM_KEY, { kind: 'config', reason, remedy, aadsts: c.aadsts, error: c.error, at: this.now() } satisfies AuthProblem);
    }
    this.opts.log.warn({ aadsts: c.aadsts, error: c.error, kind: c.kind }, 'app-only token request refused');
    return new AgentError(c.kind === 'transient' ? 'AUTH_TRANSIENT' : 'AUTH_CONFIG', `${reason}.`, { remedy, cause: error });
  }
}

/** msal's token cache, kept (encrypted) in our store: the plugin contract is read before, write after if changed. */
export function storeCachePlugin(store: Store): ICachePlugin {
  return {
    async beforeCacheAccess(context: TokenCacheContext) {
      // msal merges what it reads into its memory; what another process refreshed is picked up here.
      const cached = await store.getSecret<string>(CACHE_KEY);
      if (cached) context.tokenCache.deserialize(cached);
    },
    async afterCacheAccess(context: TokenCacheContext) {
      if (context.cacheHasChanged) await store.setSecret(CACHE_KEY, context.tokenCache.serialize());
    },
  };
}

/** msal-node's INetworkModule over our fetch: one trust policy for every HTTP call the agent makes. */
export function networkClientOver(fetchImpl: FetchLike, hosts?: Set<string>): INetworkModule {
  const send = async <T>(method: 'GET' | 'POST', url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> => {
    hosts?.add(new URL(url).host);
    const response = await fetchImpl(url, {
      method,
      headers: options?.headers,
      body: method === 'POST' ? options?.body : undefined,
      signal: AbortSignal.timeout(timeout ?? 30_000),
      redirect: 'manual',
    });
    const text = await response.text();
    const headers: Record<string, string> = {};
    response.headers.forEach((value, key) => {
      headers[key.toLowerCase()] = value;
    });
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = { error: 'invalid_response', error_description: `HTTP ${response.status}: the response is not JSON` };
    }
    return { status: response.status, headers, body: body as T };
  };
  return {
    sendGetRequestAsync: (url, options, timeout) => send('GET', url, options, timeout),
    sendPostRequestAsync: (url, options) => send('POST', url, options),
  };
}

export interface AppOnlyWiring {
  auth: AppOnlyAuth;
  guard: ConfinementGuard;
  /** What the mailbox's Graph client uses: no token until confinement is proven. */
  tokens: TokenProvider;
  /** The Graph client jobs get: refuses any path outside /users/{MAILBOX}. */
  graph: GraphClient;
  mailboxRoot: string;
  permissions: RequiredPermissions;
}

/**
 * Wires app-only mode for createRuntime: msal auth, the confinement guard (probing with an unguarded client of its
 * own), and the guarded Graph client the jobs receive.
 */
export function createAppOnly(d: {
  config: Pick<Config, 'clientSecret' | 'clientCertPath' | 'clientKeyPath' | 'clientSecretExpiresAt' | 'mailbox' | 'canaryMailbox' | 'confinementTtlMs' | 'allowUnconfined'>;
  endpoints: { authorityHost: URL; graphUrl: URL; clientId: string; tenant: string };
  jobs: JobsFile;
  store: Store;
  fetch: FetchLike;
  log: Logger;
  notify?: ConfinementNotify;
  now?: () => number;
  /** GRAPH_BUDGET for the jobs' client (the confinement probe's few requests are not paced). */
  budget?: RequestBudget;
}): AppOnlyWiring {
  const mailbox = d.config.mailbox!;
  const auth = new AppOnlyAuth({
    clientId: d.endpoints.clientId, tenant: d.endpoints.tenant, authorityHost: d.endpoints.authorityHost, graphUrl: d.endpoints.graphUrl, mailbox,
    certPath: d.config.clientCertPath, keyPath: d.config.clientKeyPath, clientSecret: d.config.clientSecret, secretExpiresAt: d.config.clientSecretExpiresAt,
    store: d.store, fetch: d.fetch, log: d.log.child({ component: 'auth' }), now: d.now,
  });
  const permissions = requiredPermissions(d.jobs);
  const probeGraph = new GraphClient({ graphUrl: d.endpoints.graphUrl, tokens: auth, fetch: d.fetch, log: d.log.child({ component: 'confinement' }) });
  const guard = new ConfinementGuard({
    probeGraph, mailbox, canary: d.config.canaryMailbox!, ttlMs: d.config.confinementTtlMs, allowUnconfined: d.config.allowUnconfined,
    clientId: d.endpoints.clientId, permissions: permissions.application, store: d.store, log: d.log.child({ component: 'confinement' }), notify: d.notify, now: d.now,
  });
  const tokens = confinedTokens(auth, guard);
  const graph = new GraphClient({ graphUrl: d.endpoints.graphUrl, tokens, fetch: d.fetch, log: d.log.child({ component: 'graph' }), allowedMailbox: mailbox, budget: d.budget });
  return { auth, guard, tokens, graph, mailboxRoot: `/users/${encodeURIComponent(mailbox)}`, permissions };
}
