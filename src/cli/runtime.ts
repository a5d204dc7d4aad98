import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DelegatedAuth, DELEGATED_SCOPES } from '../auth/delegated.ts';
import { signInScopes } from '../auth/permissions.ts';
import type { AppOnlyWiring, TokenProvider } from '../auth/index.ts';
import type { Config } from '../config/index.ts';
import { AgentError } from '../config/errors.ts';
import { loadJobsFile, type JobsFile } from '../config/jobs-file.ts';
import type { Logger } from '../config/logger.ts';
import { createFetch, type FetchLike } from '../config/transport.ts';
import { GraphClient } from '../graph/client.ts';
import { RequestBudget } from '../graph/request-budget.ts';
import { JobRunner, nextRunOf } from '../jobs/index.ts';
import { readScheduleZone } from '../jobs/schedule-zone.ts';
import { Notifier } from '../notify/index.ts';
import type { Sandbox } from '../sandbox/index.ts';
import { loadOrCreateTokenKey, openStore, type Store } from '../store/index.ts';

/** Everything the CLI, the web app and the scheduler share; wired once in `createRuntime`. */
export interface Runtime {
  config: Config;
  log: Logger;
  store: Store;
  auth: DelegatedAuth;
  /** What Graph calls use: `auth` (delegated) or the app-only provider, gated by the confinement proof. */
  tokens: TokenProvider;
  /** AUTH_MODE=app-only: msal auth, the confinement guard, the required permissions. */
  appOnly?: AppOnlyWiring;
  graph: GraphClient;
  jobs: JobsFile;
  runner: JobRunner;
  /** NOTIFY_URL: tells a person when the agent needs them (auth, confinement, failing jobs). */
  notifier: Notifier;
  fetch: FetchLike;
  /** The endpoints actually used: the sandbox's when MS_CLIENT_ID is unset. */
  endpoints: { authorityHost: URL; graphUrl: URL; clientId: string; tenant: string; sandbox: boolean };
  /** Where a person opens the UI, and where sign-in starts. */
  publicUrl: string;
  signinUrl: string;
  /** Set when this process runs the sandbox itself. */
  sandbox?: Sandbox;
  /**
   * Signs the dashboard's session cookies: derived from the token key and ADMIN_PASSWORD, so a restart keeps
   * people signed in to the dashboard and a new password signs everyone out.
   */
  uiSecret: Buffer;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  log: Logger;
  /** 'own': this process runs the sandbox (npm start). 'shared': use a running one, else start one for this process. */
  sandbox?: 'own' | 'shared';
  now?: () => number;
}

/**
 * Builds the runtime from a validated config. Example: `const rt = await createRuntime(loadConfig(process.env), { log })`.
 */
export async function createRuntime(config: Config, options: RuntimeOptions): Promise<Runtime> {
  const log = options.log;
  const jobs = await loadJobsFile(config.agentConfigPath);
  const closers: (() => Promise<void>)[] = [];
  let sandbox: Sandbox | undefined;
  let endpoints: Runtime['endpoints'];
  let fetchImpl: FetchLike;

  if (config.target === 'sandbox') {
    const found = await connectOrStartSandbox(config, options.sandbox ?? 'shared', log);
    sandbox = found.sandbox;
    if (sandbox) closers.push(() => sandbox!.close());
    const url = new URL(found.url);
    endpoints = { authorityHost: url, graphUrl: url, clientId: found.clientId, tenant: config.tenant, sandbox: true };
    fetchImpl = createFetch({ origins: [found.url], caPem: found.caPem });
  } else {
    endpoints = { authorityHost: config.authorityHost, graphUrl: config.graphUrl, clientId: config.clientId!, tenant: config.tenant, sandbox: false };
    fetchImpl = createFetch(localSandboxTrust(config));
  }

  const tokenKey = loadOrCreateTokenKey(config.dataDir, config.tokenKey);
  const store = await openStore(config.storeUrl, tokenKey);
  const uiSecret = createHmac('sha256', tokenKey).update('mailbox-agent dashboard sessions\0').update(config.adminPassword ?? '').digest();
  closers.unshift(() => store.close());
  const publicUrl = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  const signinUrl = `${publicUrl}/auth/signin`;
  const notifier = new Notifier({
    url: config.notifyUrl,
    repeatMs: config.notifyRepeatHours * 3_600_000,
    store,
    log: log.child({ component: 'notify' }),
    signinUrl,
    now: options.now,
  });
  const auth = new DelegatedAuth({
    clientId: endpoints.clientId,
    scopes: signInScopes(jobs, DELEGATED_SCOPES),
    clientSecret: config.clientSecret,
    tenant: endpoints.tenant,
    authorityHost: endpoints.authorityHost,
    redirectUri: config.redirectUri,
    mailbox: config.mailbox,
    store,
    fetch: fetchImpl,
    log: log.child({ component: 'auth' }),
    signinUrl,
    now: options.now,
    notify: notifier,
    keepAliveMs: config.keepaliveDays * 86_400_000,
  });
  if (store.lock.scope === 'process' && !/^(memory|sqlite):/i.test(config.storeUrl)) {
    log.warn({ store: config.storeUrl.replace(/\/\/[^@/]*@/, '//…@') }, 'this store offers no lock across processes: run one mailbox-agent process per store (start, or run, not both at once) so a refresh token is never spent twice');
  }
  // GRAPH_BUDGET, shared through the store by every job and every process on it (one mailbox per store).
  const budget = new RequestBudget({ ...config.graphBudget, store, mailbox: config.authMode === 'app-only' ? config.mailbox! : 'me', log: log.child({ component: 'graph' }) });
  // msal-node (~19 MB of RSS) is loaded only for app-only mode.
  const appOnly = config.authMode === 'app-only'
    ? (await import('../auth/app-only.ts')).createAppOnly({ config, endpoints, jobs, store, fetch: fetchImpl, log, notify: notifier, now: options.now, budget })
    : undefined;
  const tokens: TokenProvider = appOnly?.tokens ?? auth;
  const graph = appOnly?.graph ?? new GraphClient({ graphUrl: endpoints.graphUrl, tokens: auth, fetch: fetchImpl, log: log.child({ component: 'graph' }), budget });
  const runner = new JobRunner({
    jobs, graph, mailboxRoot: appOnly?.mailboxRoot ?? '/me', store, log: log.child({ component: 'jobs' }), notifyUrl: config.notifyUrl,
    notify: notifier, notifyAfterFailures: config.notifyAfterFailures,
    // App-only: no job runs until MAILBOX is proven readable and CANARY_MAILBOX denied (cached CONFINEMENT_TTL).
    ...(appOnly ? { preflight: (runLog: Logger) => appOnly.guard.preflight(runLog) } : {}),
  });
  return {
    config, log, store, auth, tokens, appOnly, graph, jobs, runner, notifier, fetch: fetchImpl, endpoints, publicUrl, signinUrl, sandbox, uiSecret,
    async close() {
      for (const close of closers) await close().catch((error) => log.warn({ err: error }, 'error while closing'));
    },
  };
}

/** The JSON of `status --json` and `GET /api/status` (DESIGN.md). */
export async function buildStatus(rt: Runtime, nextRun?: (name: string) => Date | null) {
  const auth = await rt.tokens.status();
  const appOnly = rt.appOnly ? await appOnlyStatus(rt.appOnly, auth.state === 'ready') : undefined;
  // App-only with a working token but no proof of confinement: the person must act on the confinement.
  const confinementProblem = appOnly && auth.state === 'ready' && !appOnly.mayRun ? appOnly.confinement : undefined;
  // The schedules' zone: the jobs file's, else the mailbox's (cached by the running agent), else UTC; never the host's.
  const timezone = await readScheduleZone(rt.jobs.timezone, rt.store);
  const jobs = await Promise.all(
    rt.jobs.jobs.map(async (job) => {
      const last = await rt.runner.lastRun(job.name);
      const next = nextRun?.(job.name) ?? nextRunOf(job.schedule, timezone.name);
      return {
        name: job.name,
        type: job.type,
        schedule: job.schedule,
        nextRun: next ? next.toISOString() : null,
        lastRun: last?.at ?? null,
        lastResult: last ? { ok: last.ok, examined: last.examined, actions: last.actions, failedActions: last.failedActions, ...(last.error ? { error: last.error } : {}) } : null,
      };
    }),
  );
  return {
    mode: auth.mode,
    target: rt.endpoints.sandbox ? 'sandbox' : 'microsoft',
    account: auth.account,
    state: auth.state,
    // Readiness (GET /healthz is liveness): the agent can do its work now, without a person.
    ready: auth.state === 'ready' && (!appOnly || appOnly.mayRun),
    ...(confinementProblem ? { reason: confinementProblem.reason, ...(confinementProblem.remedy ? { remedy: confinementProblem.remedy } : {}) } : {}),
    ...(auth.reason && !confinementProblem ? { reason: auth.reason } : {}),
    ...(auth.remedy && !confinementProblem ? { remedy: auth.remedy } : {}),
    ...(auth.accessTokenExpiresAt ? { accessTokenExpiresAt: auth.accessTokenExpiresAt } : {}),
    ...(auth.grantedScopes ? { grantedScopes: auth.grantedScopes } : {}),
    ...(auth.lastRefreshAt ? { lastRefreshAt: auth.lastRefreshAt } : {}),
    ...(auth.refreshTokenIssuedAt ? { refreshTokenIssuedAt: auth.refreshTokenIssuedAt } : {}),
    ...(auth.refreshTokenAgeDays !== undefined ? { refreshTokenAgeDays: auth.refreshTokenAgeDays } : {}),
    ...(auth.nextKeepAliveAt ? { nextKeepAliveAt: auth.nextKeepAliveAt } : {}),
    ...(auth.nextAttemptAt ? { nextAttemptAt: auth.nextAttemptAt } : {}),
    signinUrl: rt.signinUrl,
    ...(appOnly ? { app: appOnly.app, confinement: appOnly.confinement, ...(appOnly.warnings.length ? { warnings: appOnly.warnings } : {}) } : {}),
    timezone,
    jobs,
    recentActions: await rt.runner.recentActions({ limit: 20 }),
  };
}
export type Status = Awaited<ReturnType<typeof buildStatus>>;

/**
 * Trust for a sandbox that is named explicitly (MS_CLIENT_ID set, MS_AUTHORITY_HOST/MS_GRAPH_URL pointing at
 * https://127.0.0.1:SANDBOX_PORT, as the app-only tests do): its CA in DATA_DIR/sandbox is trusted for that origin
 * only. Any other origin keeps Node's trust (system store + NODE_EXTRA_CA_CERTS).
 */
function localSandboxTrust(config: Config): { origins: string[]; caPem: string } | undefined {
  const caPath = path.join(config.dataDir, 'sandbox', 'ca.pem');
  const local = new Set([`https://127.0.0.1:${config.sandboxPort}`, `https://localhost:${config.sandboxPort}`]);
  const origins = [...new Set([config.authorityHost.origin, config.graphUrl.origin])].filter((o) => local.has(o));
  if (!origins.length || !existsSync(caPath)) return undefined;
  return { origins, caPem: readFileSync(caPath, 'utf8') };
}

/** App-only additions to status: the app, its credential, the required permissions and the confinement proof. */
async function appOnlyStatus(w: AppOnlyWiring, tokenWorks: boolean) {
  // A stale or missing proof is renewed here (a confined one is cached for CONFINEMENT_TTL).
  const proof = tokenWorks ? await w.guard.current().catch(() => w.guard.lastProof()) : await w.guard.lastProof();
  const allowed = proof?.state === 'unconfined' && w.guard.allowUnconfined;
  return {
    mayRun: proof?.state === 'confined' || allowed,
    warnings: [
      ...(w.auth.credential.warning ? [`${w.auth.credential.warning} Renew it: mailbox-agent cert create, upload, update .env.`] : []),
      ...(allowed ? ['UNCONFINED: the app can read other mailboxes; running anyway because ALLOW_UNCONFINED=true.'] : []),
    ],
    app: { clientId: w.guard.clientId, credential: w.auth.credential, requiredPermissions: w.permissions.application },
    confinement: proof
      ? { state: proof.state, checkedAt: proof.checkedAt, mailbox: proof.mailbox, canary: proof.canary, reason: proof.reason, ...(proof.mechanism ? { mechanism: proof.mechanism } : {}), ...(proof.remedy ? { remedy: proof.remedy } : {}), ...(proof.state === 'unconfined' ? { fix: w.guard.script() } : {}) }
      : { state: 'unproven' as const, reason: 'Confinement is not proven yet: the proof runs at start, before each run when older than CONFINEMENT_TTL, and in doctor.', remedy: 'Run mailbox-agent doctor.' },
  };
}

async function connectOrStartSandbox(config: Config, mode: 'own' | 'shared', log: Logger): Promise<{ url: string; caPem: string; clientId: string; sandbox?: Sandbox }> {
  // The sandbox itself (express, node-forge, …) is loaded only when this process has to start it.
  const { SANDBOX_CLIENT_ID } = await import('../sandbox/directory.ts');
  const dataDir = path.join(config.dataDir, 'sandbox');
  const url = `https://127.0.0.1:${config.sandboxPort}`;
  if (mode === 'shared' && (await sandboxAnswers(url, path.join(dataDir, 'ca.pem')))) {
    log.debug({ url }, 'using the running sandbox');
    return { url, caPem: readFileSync(path.join(dataDir, 'ca.pem'), 'utf8'), clientId: SANDBOX_CLIENT_ID };
  }
  try {
    const { startSandbox } = await import('../sandbox/index.ts');
    // The sandbox starts before the agent listens: its sign-in listener must not take the agent's PORT.
    const sandbox = await startSandbox({ dataDir, port: config.sandboxPort, avoidPorts: [config.port] });
    return { url: sandbox.url, caPem: sandbox.caPem, clientId: sandbox.clientId, sandbox };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      if (await sandboxAnswers(url, path.join(dataDir, 'ca.pem'))) {
        return { url, caPem: readFileSync(path.join(dataDir, 'ca.pem'), 'utf8'), clientId: SANDBOX_CLIENT_ID };
      }
      throw new AgentError('CONFIG_INVALID', `Port ${config.sandboxPort} is taken by something that is not the sandbox.`, { remedy: 'Set SANDBOX_PORT to a free port in .env.', cause: error });
    }
    throw error;
  }
}

async function sandboxAnswers(url: string, caPath: string): Promise<boolean> {
  if (!existsSync(caPath)) return false;
  const f = createFetch({ origins: [url], caPem: readFileSync(caPath, 'utf8') });
  try {
    const response = await f(`${url}/common/v2.0/.well-known/openid-configuration`, { signal: AbortSignal.timeout(2000) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}
