import type { Server } from 'node:http';
import { KeepAlive } from '../auth/keep-alive.ts';
import type { Config } from '../config/index.ts';
import type { Logger } from '../config/logger.ts';
import { Mailbox } from '../graph/mailbox.ts';
import { fireClaims, Scheduler } from '../jobs/index.ts';
import { ScheduleZone } from '../jobs/schedule-zone.ts';
import { SnoozeWaker, type WakerClock } from '../jobs/snooze-waker.ts';
import { createApp, serve } from '../web/index.ts';
import { buildStatus, createRuntime, type Runtime } from './runtime.ts';

/**
 * `mailbox-agent start`: the sandbox (when no tenant is configured), the web UI and the scheduler.
 * Reads top to bottom: runtime → app → listen → schedule → shut down on a signal.
 */
export async function startServer(
  config: Config,
  log: Logger,
  options: { installSignalHandlers?: boolean; shutdownGraceMs?: number; zoneCheckMs?: number; snoozeClock?: WakerClock } = {},
): Promise<{ rt: Runtime; server: Server; stop: () => Promise<void>; snoozeWaker: SnoozeWaker }> {
  const rt = await createRuntime(config, { log, sandbox: 'own' });
  if (rt.endpoints.sandbox) {
    log.info(`mailbox-agent is running against the built-in Microsoft 365 sandbox (MS_CLIENT_ID is not set). Open ${rt.publicUrl} and sign in as alice@contoso.test (password: sandbox).`);
  } else {
    log.info(`mailbox-agent is running for client ${config.clientId} at ${rt.endpoints.authorityHost.origin}. Open ${rt.publicUrl}`);
  }
  // App-only: prove confinement at start (jobs re-check before each run); a failure is logged and notified, never fatal.
  if (rt.appOnly) void rt.appOnly.guard.prove().catch((error) => log.warn({ err: error }, 'confinement proof at start failed'));
  // Delegated: while nobody is signed in or a new sign-in is needed, scheduled runs pause quietly.
  const authGate = rt.appOnly ? undefined : async () => {
    const auth = await rt.auth.status();
    return auth.state === 'ready' ? undefined : `${auth.state}: ${auth.reason ?? auth.remedy ?? ''}`;
  };
  // Shutdown, for runs started from the web (Run now, the API) as for scheduled ones: stop at the next safe point, then abort.
  const runStop = new AbortController();
  const runAbort = new AbortController();
  // Schedules run in the jobs file's zone, else the mailbox's own (known once someone is signed in), else UTC.
  const zone = scheduleZoneOf(rt);
  const scheduler = new Scheduler(rt.runner, log.child({ component: 'scheduler' }), (await zone.load()).name, authGate, fireClaims(rt.store));
  zone.onChange((z) => void scheduler.setTimezone(z.name).catch((error) => log.warn({ err: error }, 're-scheduling in the new time zone failed')));
  // Snoozed messages come back at their time, not at their job's next run; it reads the lists again after each run.
  const snoozeWaker = new SnoozeWaker({
    jobs: rt.jobs.jobs.filter((j) => j.type === 'inbox-rules').map((j) => j.name),
    store: rt.store,
    graph: rt.graph,
    mailboxRoot: rt.appOnly?.mailboxRoot ?? '/me',
    log: log.child({ component: 'snooze-waker' }),
    gate: authGate,
    ...(rt.appOnly ? { preflight: rt.appOnly.guard.preflight.bind(rt.appOnly.guard) } : {}),
    nextRun: (job) => scheduler.nextRun(job),
    clock: options.snoozeClock,
  });
  const stopRearming = rt.runner.onRunFinished((job) => snoozeWaker.rearm(job));
  const app = createApp({
    auth: rt.auth,
    runner: rt.runner,
    status: () => buildStatus(rt, (name) => scheduler.nextRun(name)),
    notices: () => rt.notifier.active(),
    log: log.child({ component: 'web' }),
    redirectUri: config.redirectUri,
    adminPassword: config.adminPassword,
    secret: rt.uiSecret,
    trustProxy: config.trustProxy,
    appOnly: Boolean(rt.appOnly),
    runSignals: { stop: runStop.signal, abort: runAbort.signal },
  });
  const web = await serve(app, { port: config.port, host: config.host, log: log.child({ component: 'web' }) });
  scheduler.start();
  snoozeWaker.start();
  void zone.refresh().catch((error) => log.warn({ err: error }, 'time zone check failed'));
  await rt.runner.settleRemovedJobs();
  // Keep-alive refresh every KEEPALIVE_DAYS even when no job runs, plus notification reminders and retries.
  const upkeep = new KeepAlive({ auth: rt.appOnly ? undefined : rt.auth, notifier: rt.notifier, log: log.child({ component: 'keep-alive' }) });
  upkeep.start();
  // A new sign-in (here, or `signin` in another process) or a day-old setting: the zone is read again.
  const zoneCheck = setInterval(() => void zone.refresh().catch((error) => log.warn({ err: error }, 'time zone check failed')), options.zoneCheckMs ?? 5_000);
  zoneCheck.unref();
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('shutting down: no new runs or requests; a running job finishes its page');
      const graceMs = options.shutdownGraceMs ?? 30_000;
      const drained = web.close();
      runStop.abort();
      clearInterval(zoneCheck);
      stopRearming();
      const [clean, answered] = await Promise.all([scheduler.stop(graceMs), settlesWithin(drained, graceMs), settlesWithin(snoozeWaker.stop(), graceMs)]);
      if (!answered) {
        log.warn({ graceMs }, 'a request did not finish in time; aborting the run behind it');
        runAbort.abort();
        if (!(await settlesWithin(drained, 5_000))) web.closeAll();
      }
      await drained;
      await upkeep.stop();
      await rt.close();
      log.info({ clean }, 'stopped');
    })());
  if (options.installSignalHandlers !== false) {
    const onSignal = () => void stop().then(() => process.exit(0));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  return { rt, server: web.server, stop, snoozeWaker };
}

/**
 * The mailbox's zone is asked for only when someone may be: delegated, a signed-in account (its sign-in time
 * marks a new sign-in, after which the zone is read again); app-only, once confinement is proven (or ALLOW_UNCONFINED).
 */
function scheduleZoneOf(rt: Runtime): ScheduleZone {
  const mailbox = new Mailbox(rt.graph, rt.appOnly?.mailboxRoot ?? '/me');
  const appOnly = rt.appOnly;
  return new ScheduleZone({
    fileZone: rt.jobs.timezone,
    store: rt.store,
    readSettings: () => mailbox.settings(),
    identity: appOnly
      ? async () => {
        const proof = await appOnly.guard.lastProof();
        const mayRun = proof?.state === 'confined' || (proof?.state === 'unconfined' && appOnly.guard.allowUnconfined);
        return mayRun ? `app-only ${appOnly.mailboxRoot}` : undefined;
      }
      : async () => {
        if ((await rt.auth.status()).state !== 'ready') return undefined;
        const account = await rt.auth.account();
        return account ? `${account.oid} signed in ${account.signedInAt}` : undefined;
      },
    log: rt.log.child({ component: 'schedule-zone' }),
  });
}

/** Whether `promise` settles within `ms` (the timer never keeps the process alive). */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([promise.then(() => true, () => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), ms).unref())]);
}
