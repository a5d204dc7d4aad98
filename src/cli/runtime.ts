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
import { JobRunner } from '../jobs/runner.ts';
import { Notifier } from '../notify/index.ts';
import type { Sandbox } from '../sandbox/index.ts';
import type { Store } from '../store/index.ts';
import { openKeyedStore, publicUrlsOf, warnIfStoreUnlocked } from './status-runtime.ts';

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
    fetchImpl = found.fetch ?? createFetch({ origins: [found.url], caPem: found.caPem });
  } else {
    endpoints = { authorityHost: config.authorityHost, graphUrl: config.graphUrl, clientId: config.clientId!, tenant: config.tenant, sandbox: false };
    fetchImpl = createFetch(localSandboxTrust(config));
  }

  const { store, uiSecret } = await openKeyedStore(config);
  closers.unshift(() => store.close());
  const { publicUrl, signinUrl } = publicUrlsOf(config);
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
  warnIfStoreUnlocked(store, config, log);
  // GRAPH_BUDGET, shared through the store by every job and every process on it (one mailbox per store).
  const budget = new RequestBudget({ ...config.graphBudget, store, mailbox: config.authMode === 'app-only' ? config.mailbox! : 'me', log: log.child({ component: 'graph' }), now: options.now });
  // Before the store closes: what this process reserved and did not spend goes back to the mailbox's budget.
  closers.unshift(() => budget.close());
  // msal-node (~19 MB of RSS) is loaded only for app-only mode.
  const appOnly = config.authMode === 'app-only'
    ? (await import('../auth/app-only.ts')).createAppOnly({ config, endpoints, jobs, store, fetch: fetchImpl, log, notify: notifier, now: options.now, budget })
    : undefined;
  const tokens: TokenProvider = appOnly?.tokens ?? auth;
  const graph = appOnly?.graph ?? new GraphClient({ graphUrl: endpoints.graphUrl, tokens: auth, fetch: fetchImpl, log: log.child({ component: 'graph' }), budget, now: options.now });
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

export { buildStatus, type Status } from './status-runtime.ts';

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

/** The sandbox to use; `fetch` is the one that reached a running sandbox, so its connection is used again. */
async function connectOrStartSandbox(config: Config, mode: 'own' | 'shared', log: Logger): Promise<{ url: string; caPem: string; clientId: string; sandbox?: Sandbox; fetch?: FetchLike }> {
  // The sandbox itself (express, node-forge, …) is loaded only when this process has to start it.
  const { SANDBOX_CLIENT_ID } = await import('../sandbox/directory.ts');
  const dataDir = path.join(config.dataDir, 'sandbox');
  const url = `https://127.0.0.1:${config.sandboxPort}`;
  const running = mode === 'shared' ? await sandboxAnswers(url, path.join(dataDir, 'ca.pem')) : undefined;
  if (running) {
    log.debug({ url }, 'using the running sandbox');
    return { url, caPem: running.caPem, clientId: SANDBOX_CLIENT_ID, fetch: running.fetch };
  }
  try {
    const { startSandbox } = await import('../sandbox/index.ts');
    // The sandbox starts before the agent listens: its sign-in listener must not take the agent's PORT.
    const sandbox = await startSandbox({ dataDir, port: config.sandboxPort, avoidPorts: [config.port] });
    return { url: sandbox.url, caPem: sandbox.caPem, clientId: sandbox.clientId, sandbox };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      const answering = await sandboxAnswers(url, path.join(dataDir, 'ca.pem'));
      if (answering) return { url, caPem: answering.caPem, clientId: SANDBOX_CLIENT_ID, fetch: answering.fetch };
      throw new AgentError('CONFIG_INVALID', `Port ${config.sandboxPort} is taken by something that is not the sandbox.`, { remedy: 'Set SANDBOX_PORT to a free port in .env.', cause: error });
    }
    throw error;
  }
}

/** A sandbox answering at `url` with the CA in `caPath`: that CA, and the fetch that reached it. */
async function sandboxAnswers(url: string, caPath: string): Promise<{ caPem: string; fetch: FetchLike } | undefined> {
  if (!existsSync(caPath)) return undefined;
  const caPem = readFileSync(caPath, 'utf8');
  const f = createFetch({ origins: [url], caPem });
  try {
    const response = await f(`${url}/common/v2.0/.well-known/openid-configuration`, { signal: AbortSignal.timeout(2000) });
    await response.body?.cancel();
    return response.ok ? { caPem, fetch: f } : undefined;
  } catch {
    return undefined;
  }
}
