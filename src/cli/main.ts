import { parseArgs } from 'node:util';
// Only what every command needs is imported here (errors.ts imports nothing): each command loads its own
// modules when it runs, so `--help` loads no configuration, zod, pino or express, and `status` no web stack,
// HTTP client or sandbox (docs/BENCHMARKS.md, "The CLI as a user waits for it").
import { AgentError, EXIT, codeNeedsPerson, describeError, exitCodeFor } from '../config/errors.ts';
import type { Config } from '../config/index.ts';
import type { Logger } from '../config/logger.ts';
import type { Runtime } from './runtime.ts';
import { helpFor } from './help.ts';

const USAGE = `Usage: mailbox-agent <command> [options]

Commands:
  start                      web UI and scheduler (the sandbox too, when MS_CLIENT_ID is unset)
  run <job> [--dry-run] [--json]
                             run one job once now
  explain <job> [--message ID | --subject TEXT | --last N] [--json]
                             why each rule did or did not match, and what it would do
  status [--json]            who is signed in, token state, jobs
  signin --device            sign in on a machine with no browser (device code)
  signout                    forget every token of the account
  doctor                     check configuration, endpoints, token and jobs file
  sandbox                    run the offline Microsoft 365 sandbox alone
  cert create [--out DIR] [--days N]
                             app-only: self-signed certificate, key and keyCredentials JSON
  policy [--mailbox UPN] [--group ADDRESS]
                             app-only: the PowerShell that confines the app to one mailbox

Exit status: 0 ok, 1 failed, 2 a person is needed (sign-in, confinement), 64 usage error.
Examples:
  mailbox-agent run triage --dry-run
  mailbox-agent status --json
  mailbox-agent <command> --help     options and examples of one command`;

/**
 * The CLI's one exit: every command returns an exit status or throws; errors are printed once, here.
 * src/cli/bin.js calls it with the arguments; importing this module runs nothing.
 */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command ? EXIT.ok : EXIT.usage;
  }
  const json = rest.includes('--json');
  if ((rest.includes('--help') || rest.includes('-h')) && helpFor(command)) {
    console.log(helpFor(command));
    return EXIT.ok;
  }
  try {
    const handler = COMMANDS[command];
    if (!handler) throw new AgentError('USAGE', `Unknown command "${command}".`, { remedy: 'Run mailbox-agent --help for the list.' });
    return await handler(rest, env);
  } catch (error) {
    if (json && command === 'run') {
      console.log(JSON.stringify({ job: rest.find((a) => !a.startsWith('-')) ?? null, ok: false, dryRun: rest.includes('--dry-run'), examined: 0, actions: [], graphRequests: 0, error: describeError(error) }));
    } else {
      console.error(`mailbox-agent: ${describeError(error).replace(/\n/g, '\n  ')}`);
    }
    return exitCodeFor(error);
  }
}

type Command = (args: string[], env: NodeJS.ProcessEnv) => Promise<number>;

/** One line, redrawn in place: "triage: 12,000 messages examined, 4,810 actions". */
export function progressLine(stream: NodeJS.WriteStream, job: string) {
  let drawn = false;
  return {
    update(report: { examined: number; actions: unknown[] }) {
      stream.write(`\r${job}: ${report.examined.toLocaleString('en')} messages examined, ${report.actions.length.toLocaleString('en')} actions…\u001b[K`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write('\r\u001b[K');
    },
  };
}

function parse(args: string[], options: Record<string, { type: 'boolean' | 'string'; short?: string }>, positionals = 0): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: positionals > 0, strict: true });
    if (parsed.positionals.length > positionals) throw new Error(`unexpected argument "${parsed.positionals[positionals]}"`);
    return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals };
  } catch (error) {
    throw new AgentError('USAGE', (error as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''), { remedy: 'Run mailbox-agent --help.' });
  }
}

async function setup(env: NodeJS.ProcessEnv, quiet = false): Promise<{ config: Config; log: Logger }> {
  const [{ loadConfig }, { createLogger }] = await Promise.all([import('../config/index.ts'), import('../config/logger.ts')]);
  const config = loadConfig(env);
  const log = createLogger({ level: quiet && config.logLevel === 'info' ? 'warn' : config.logLevel });
  return { config, log };
}

async function withRuntime<T>(env: NodeJS.ProcessEnv, quiet: boolean, work: (rt: Runtime) => Promise<T>): Promise<T> {
  const { config, log } = await setup(env, quiet);
  const { createRuntime } = await import('./runtime.ts');
  const rt = await createRuntime(config, { log, sandbox: 'shared' });
  try {
    return await work(rt);
  } finally {
    await rt.close();
  }
}

const COMMANDS: Record<string, Command> = {
  async start(args, env) {
    parse(args, {});
    const { config, log } = await setup(env);
    const { startServer } = await import('./server.ts');
    await startServer(config, log);
    return new Promise<number>(() => undefined);
  },

  async run(args, env) {
    const { values, positionals } = parse(args, { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } }, 1);
    const name = positionals[0];
    if (!name) throw new AgentError('USAGE', 'Which job? mailbox-agent run <job>.', { remedy: 'The jobs are listed by mailbox-agent status.' });
    return withRuntime(env, Boolean(values.json), async (rt) => {
      // A long backfill shows one updating line on a terminal, never a flood in a pipe or log.
      const progress = process.stderr.isTTY ? progressLine(process.stderr, name) : undefined;
      const result = await rt.runner.run(name, { dryRun: Boolean(values['dry-run']), onProgress: progress?.update }).finally(() => progress?.done());
      if (values.json) {
        // The same line as JSON.stringify, written a hundred actions at a time (src/jobs/run-json.ts).
        const { runResultJson } = await import('../jobs/run-json.ts');
        for (const piece of runResultJson(result)) process.stdout.write(piece);
      } else {
        const verb = result.dryRun ? 'would take' : 'took';
        console.log(`${result.job}: examined ${result.examined} message(s), ${verb} ${result.actions.length} action(s), ${result.graphRequests} Graph request(s).`);
        for (const a of result.actions) console.log(`  ${a.result.padEnd(7)} ${a.rule}: ${a.action}${a.value !== undefined && a.value !== true ? ` ${JSON.stringify(a.value)}` : ''}  "${a.subject ?? a.messageId}"${a.error ? ` (${a.error})` : ''}${a.because ? ` because ${a.because}` : ''}`);
        if (!result.ok) console.error(`mailbox-agent: ${result.job} failed: ${result.error}`);
      }
      if (result.ok) return EXIT.ok;
      return codeNeedsPerson(result.errorCode) ? EXIT.needsPerson : EXIT.failed;
    });
  },

  async explain(args, env) {
    const { runExplain } = await import('./explain.ts');
    return runExplain(args, (work) => withRuntime(env, true, work));
  },

  async status(args, env) {
    const { values } = parse(args, { json: { type: 'boolean' } });
    const { config, log } = await setup(env, true);
    const { buildStatus, openStatusRuntime } = await import('./status-runtime.ts');
    // Delegated status reads the store only; app-only status proves the confinement through Graph (full runtime).
    const rt = config.authMode === 'delegated'
      ? await openStatusRuntime(config, log)
      : await (await import('./runtime.ts')).createRuntime(config, { log, sandbox: 'shared' });
    try {
      const status = await buildStatus(rt);
      if (values.json) {
        console.log(JSON.stringify(status));
      } else {
        console.log(`mode: ${status.mode} (${status.target})`);
        console.log(`account: ${status.account ? `${status.account.upn} (tenant ${status.account.tid})` : 'none'}`);
        console.log(`state: ${status.state}${status.reason ? `: ${status.reason}` : ''}`);
        if (status.remedy) console.log(`to do: ${status.remedy}`);
        if (status.confinement) console.log(`confinement: ${status.confinement.state}: ${status.confinement.reason}`);
        for (const warning of status.warnings ?? []) console.log(`warning: ${warning}`);
        if (status.confinement && 'fix' in status.confinement && status.confinement.fix) console.log(`\n${status.confinement.fix}\n`);
        for (const job of status.jobs) {
          const last = job.lastResult ? `${job.lastRun} ${job.lastResult.ok ? 'ok' : `failed: ${job.lastResult.error}`}` : 'never';
          console.log(`job ${job.name}: "${job.schedule}", next ${job.nextRun ?? '-'}, last ${last}`);
        }
      }
      const confinementOk = !status.confinement || status.confinement.state === 'confined' || (status.confinement.state === 'unconfined' && rt.appOnly?.guard.allowUnconfined === true);
      return status.state === 'ready' && confinementOk ? EXIT.ok : EXIT.needsPerson;
    } finally {
      await rt.close();
    }
  },

  async signin(args, env) {
    const { values } = parse(args, { device: { type: 'boolean' } });
    if (!values.device) {
      throw new AgentError('USAGE', 'mailbox-agent signin needs --device (the browser sign-in starts in the web UI).', {
        remedy: 'Run mailbox-agent signin --device, or run mailbox-agent start and open the URL it prints.',
      });
    }
    return withRuntime(env, true, async (rt) => {
      if (rt.appOnly) throw new AgentError('USAGE', 'AUTH_MODE=app-only signs in with the app credential; there is nobody to sign in.', { remedy: 'Use AUTH_MODE=delegated to sign in as a person.' });
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal);
      try {
        const account = await rt.auth.deviceSignin((code) => {
          console.log(code.message);
          console.log(`  URL:  ${code.verificationUri}`);
          console.log(`  code: ${code.userCode}`);
          console.log('Waiting for the sign-in…');
        }, { signal: abort.signal });
        console.log(`Signed in as ${account.upn} (tenant ${account.tid}). The jobs run from now on.`);
        return EXIT.ok;
      } finally {
        process.off('SIGINT', onSignal);
      }
    });
  },

  async signout(args, env) {
    parse(args, {});
    return withRuntime(env, true, async (rt) => {
      if (rt.appOnly) {
        await rt.appOnly.auth.signout();
        console.log('Forgot the cached app-only token. The credential itself (MS_CLIENT_CERT/MS_CLIENT_SECRET) stays in .env; remove it from the app registration to revoke it.');
        return EXIT.ok;
      }
      const account = await rt.auth.signout();
      console.log(account ? `Signed out ${account.upn}: every token is erased.` : 'Nobody was signed in; nothing to erase.');
      console.log("To revoke the app's access at Microsoft too: https://myapps.microsoft.com (work or school) or https://account.live.com/consent/Manage (personal).");
      return EXIT.ok;
    });
  },

  async cert(args) {
    const { runCert } = await import('./cert.ts');
    return runCert(args);
  },

  async policy(args, env) {
    const { runPolicy } = await import('./policy.ts');
    return runPolicy(args, env);
  },

  async doctor(args, env) {
    parse(args, {});
    const { runDoctor } = await import('./doctor.ts');
    return runDoctor(env);
  },

  async sandbox(args, env) {
    parse(args, {});
    const { config, log } = await setup(env);
    const { startSandbox } = await import('../sandbox/index.ts');
    const path = await import('node:path');
    const sandbox = await startSandbox({ dataDir: path.join(config.dataDir, 'sandbox'), port: config.sandboxPort });
    log.info({ url: sandbox.url, ca: sandbox.caPath }, `The Microsoft 365 sandbox is running at ${sandbox.url} (client id ${sandbox.clientId}; users ${sandbox.users.map((u) => u.upn).join(', ')}, password "${sandbox.users[0]?.password}").`);
    const stop = async () => {
      await sandbox.close();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return new Promise<number>(() => undefined);
  },
};
