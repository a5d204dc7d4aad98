/**
 * What `status` needs and nothing more: the configuration's URLs, the jobs file, the store (opened with the
 * token key) and the delegated account's state. No sandbox is started or asked, no HTTP client, Graph client,
 * job runner, web stack or msal is loaded: `status` answers from the store in a fraction of the full runtime's
 * start-up (docs/BENCHMARKS.md). createRuntime (runtime.ts) wires the same pieces for everything else.
 */
import { createHmac } from 'node:crypto';
import type { AppOnlyWiring, TokenProvider } from '../auth/index.ts';
import type { Config } from '../config/index.ts';
import { loadJobsFile, type JobsFile } from '../config/jobs-file.ts';
import type { Logger } from '../config/logger.ts';
import { createFetch } from '../config/transport.ts';
import type { AuditEntry } from '../jobs/audit.ts';
import type { LastRun } from '../jobs/runner.ts';
import { nextRunOf } from '../jobs/scheduler.ts';
import { readScheduleZone } from '../jobs/schedule-zone.ts';
import { loadOrCreateTokenKey, openStore, type Store } from '../store/index.ts';

/** Where a person opens the UI, and where sign-in starts. */
export function publicUrlsOf(config: Config): { publicUrl: string; signinUrl: string } {
  const publicUrl = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  return { publicUrl, signinUrl: `${publicUrl}/auth/signin` };
}

/** The store, opened with the token key (made on first use), and the dashboard's session secret derived from it. */
export async function openKeyedStore(config: Config): Promise<{ store: Store; uiSecret: Buffer }> {
  const tokenKey = loadOrCreateTokenKey(config.dataDir, config.tokenKey);
  const store = await openStore(config.storeUrl, tokenKey);
  const uiSecret = createHmac('sha256', tokenKey).update('mailbox-agent dashboard sessions\0').update(config.adminPassword ?? '').digest();
  return { store, uiSecret };
}

/** A store that offers no lock across processes, other than the ones meant for one process (memory, sqlite). */
export function warnIfStoreUnlocked(store: Store, config: Config, log: Logger) {
  if (store.lock.scope === 'process' && !/^(memory|sqlite):/i.test(config.storeUrl)) {
    log.warn({ store: config.storeUrl.replace(/\/\/[^@/]*@/, '//…@') }, 'this store offers no lock across processes: run one mailbox-agent process per store (start, or run, not both at once) so a refresh token is never spent twice');
  }
}

/** What buildStatus reads. The full Runtime is one; openStatusRuntime builds a lighter one. */
export interface StatusSource {
  tokens: Pick<TokenProvider, 'status'>;
  appOnly?: AppOnlyWiring;
  jobs: JobsFile;
  runner: { lastRun(name: string): Promise<LastRun | undefined>; recentActions(options: { limit?: number }): Promise<AuditEntry[]> };
  endpoints: { sandbox: boolean };
  signinUrl: string;
  /** Where the schedules' time zone is cached (jobs/schedule-zone.ts). */
  store: Pick<Store, 'get'>;
}

/**
 * The status runtime of a delegated agent; app-only status proves the confinement through Graph, so it needs
 * the full runtime (createRuntime). Example: `const rt = await openStatusRuntime(config, log); await buildStatus(rt)`.
 */
export async function openStatusRuntime(config: Config, log: Logger): Promise<StatusSource & { close(): Promise<void> }> {
  if (config.authMode !== 'delegated') throw new Error('openStatusRuntime is for AUTH_MODE=delegated; app-only status needs createRuntime.');
  const jobs = await loadJobsFile(config.agentConfigPath);
  const { store } = await openKeyedStore(config);
  try {
    warnIfStoreUnlocked(store, config, log);
    const { signinUrl } = publicUrlsOf(config);
    const sandbox = config.target === 'sandbox';
    // The sandbox's client id is a constant: status neither starts a sandbox nor asks a running one.
    const [{ DelegatedAuth, DELEGATED_SCOPES }, { AuditLog }, { lastRunOf }, clientId] = await Promise.all([
      import('../auth/delegated.ts'),
      import('../jobs/audit.ts'),
      import('../jobs/last-run.ts'),
      sandbox ? import('../sandbox/directory.ts').then((d) => d.SANDBOX_CLIENT_ID) : Promise.resolve(config.clientId!),
    ]);
    const authorityHost = sandbox ? new URL(`https://127.0.0.1:${config.sandboxPort}`) : config.authorityHost;
    const auth = new DelegatedAuth({
      clientId, scopes: DELEGATED_SCOPES, clientSecret: config.clientSecret, tenant: config.tenant, authorityHost, redirectUri: config.redirectUri,
      mailbox: config.mailbox, store, fetch: createFetch(), log: log.child({ component: 'auth' }), signinUrl, keepAliveMs: config.keepaliveDays * 86_400_000,
    });
    const audit = new AuditLog(store, () => jobs.jobs.map((j) => j.name));
    return {
      tokens: auth,
      jobs,
      runner: { lastRun: (name) => lastRunOf(store, name), recentActions: (options) => audit.recent(options) },
      endpoints: { sandbox },
      signinUrl,
      store,
      close: () => store.close(),
    };
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
}

/** The JSON of `status --json` and `GET /api/status` (DESIGN.md), from the full runtime or the status runtime. */
export async function buildStatus(rt: StatusSource, nextRun?: (name: string) => Date | null) {
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
