/**
 * `mailbox-agent explain <job> [--message ID | --subject TEXT | --last N] [--json]`: for each message, every
 * rule of an inbox-rules job in order, matched or not, the key that decided it, and the actions it would
 * take. Reads only: nothing is changed and no ledger or delta state is touched.
 */
import { parseArgs } from 'node:util';
import type { InboxRulesJob } from '../config/jobs-file.ts';
import { AgentError, EXIT } from '../config/index.ts';
import { Mailbox, type GraphMessage } from '../graph/mailbox.ts';
import { jobStore } from '../jobs/context.ts';
import { explainRules, selectFor, toMessageView, type RuleExplanation } from '../jobs/rules.ts';
import { fetchExtras, loadMatchEnv } from '../jobs/rules/lookups.ts';
import type { Runtime } from './runtime.ts';

const DEFAULT_LAST = 10;
/** How many of the folder's newest messages `--subject` looks through. */
const SUBJECT_SCAN = 500;

export interface ExplainOptions {
  job: string;
  message?: string;
  subject?: string;
  last: number;
  json: boolean;
}

/** One message as `explain --json` prints it. */
export interface MessageExplanation {
  messageId: string;
  subject: string;
  from?: string;
  receivedDateTime: string;
  rules: RuleExplanation[];
}

/** The command's arguments, or a USAGE error naming the problem. */
export function parseExplainArgs(args: string[]): ExplainOptions {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, strict: true, options: { message: { type: 'string' }, subject: { type: 'string' }, last: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  } catch (error) {
    throw new AgentError('USAGE', (error as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''), { remedy: 'Run mailbox-agent explain --help.' });
  }
  const { values, positionals } = parsed;
  const job = positionals[0];
  if (!job || positionals.length > 1) {
    throw new AgentError('USAGE', job ? `unexpected argument "${positionals[1]}"` : 'Which job? mailbox-agent explain <job>.', { remedy: 'The jobs are listed by mailbox-agent status; run mailbox-agent explain --help.' });
  }
  const chosen = ['message', 'subject', 'last'].filter((k) => values[k as 'message'] !== undefined);
  if (chosen.length > 1) throw new AgentError('USAGE', `--${chosen.join(' and --')} cannot be combined.`, { remedy: 'Pick one: --message ID, --subject TEXT or --last N.' });
  const last = values.last === undefined ? DEFAULT_LAST : Number(values.last);
  if (!Number.isInteger(last) || last < 1 || last > 1000) throw new AgentError('USAGE', `--last must be a whole number from 1 to 1000, not "${values.last}".`, { remedy: 'e.g. mailbox-agent explain triage --last 20.' });
  if (values.subject !== undefined && values.subject.trim() === '') throw new AgentError('USAGE', '--subject needs some text.', { remedy: 'e.g. mailbox-agent explain triage --subject invoice.' });
  return { job, ...(values.message !== undefined ? { message: values.message } : {}), ...(values.subject !== undefined ? { subject: values.subject } : {}), last, json: values.json === true };
}

/**
 * The messages `options` names, each with every rule's verdict. Example:
 * `await explainJob(rt, { job: 'triage', last: 5, json: false })`.
 */
export async function explainJob(rt: Runtime, options: ExplainOptions): Promise<MessageExplanation[]> {
  const spec = rt.jobs.jobs.find((j) => j.name === options.job);
  if (!spec) {
    const names = rt.jobs.jobs.map((j) => j.name).join(', ') || '(none)';
    throw new AgentError('JOB_NOT_FOUND', `There is no job named "${options.job}" in ${rt.jobs.path}.`, { remedy: `Jobs defined: ${names}.`, status: 404 });
  }
  if (spec.type !== 'inbox-rules') {
    throw new AgentError('USAGE', `explain shows how inbox rules judge messages, and ${spec.name} is a ${spec.type} job, not inbox-rules.`, { remedy: 'Name an inbox-rules job; for a calendar-rules job, run mailbox-agent run <job> --dry-run --json (each action says why).' });
  }
  const job: InboxRulesJob = spec;
  // App-only: the same confinement proof a run needs before it reads the mailbox.
  await rt.appOnly?.guard.preflight(rt.log);
  const mailbox = new Mailbox(rt.graph, rt.appOnly?.mailboxRoot ?? '/me');
  const select = selectFor(job.rules);
  const messages: GraphMessage[] = [];
  if (options.message !== undefined) {
    messages.push(await mailbox.message(options.message, select));
  } else if (options.subject !== undefined) {
    const needle = options.subject.toLowerCase();
    for await (const m of mailbox.messages(job.folder, { select, top: 100, limit: SUBJECT_SCAN })) {
      if (typeof m.subject === 'string' && m.subject.toLowerCase().includes(needle)) messages.push(m);
      if (messages.length >= options.last) break;
    }
  } else {
    for await (const m of mailbox.messages(job.folder, { select, top: options.last, limit: options.last })) messages.push(m);
  }
  // The same look-ups a run makes (own address, contacts, headers, attachments), as a dry run: nothing is stored.
  const lookups = { store: jobStore(rt.store, job.name), mailbox, graph: rt.graph, dryRun: true, signal: new AbortController().signal, runStart: new Date() };
  const env = await loadMatchEnv(lookups, job.rules);
  const views = await fetchExtras(lookups, job.rules, messages.map((message) => ({ message, view: toMessageView(message) })), env);
  return views.map(({ view }) => ({ messageId: view.id, subject: view.subject, ...(view.from ? { from: view.from } : {}), receivedDateTime: view.receivedDateTime, rules: explainRules(job.rules, view, env) }));
}

/** The explanation as a person reads it. */
export function formatExplanation(messages: MessageExplanation[]): string {
  const out: string[] = [];
  for (const m of messages) {
    out.push(`"${m.subject}" from ${m.from ?? '(no sender)'}, received ${m.receivedDateTime} (${m.messageId})`);
    for (const r of m.rules) {
      out.push(`  ${r.matched ? 'matched    ' : 'not matched'} ${r.rule}: ${r.because}${r.stopped ? ' (stop: later rules are not looked at)' : ''}`);
      for (const a of r.actions) out.push(`      would ${a.action}${a.value !== undefined && a.value !== true ? ` ${JSON.stringify(a.value)}` : ''}`);
      if (r.matched && r.actions.length === 0) out.push('      (nothing to do: the message already is as the actions would leave it, or an earlier rule does the same)');
    }
  }
  return out.join('\n');
}

/** The command: `withRuntime` gives it the agent's runtime (src/cli/main.ts). */
export async function runExplain(args: string[], withRuntime: <T>(work: (rt: Runtime) => Promise<T>) => Promise<T>): Promise<number> {
  const options = parseExplainArgs(args);
  return withRuntime(async (rt) => {
    const messages = await explainJob(rt, options);
    if (options.json) console.log(JSON.stringify({ job: options.job, messages }));
    else if (messages.length === 0) console.log(`${options.job}: no message to explain${options.subject ? ` (none of the newest ${SUBJECT_SCAN} has "${options.subject}" in its subject)` : ''}.`);
    else console.log(formatExplanation(messages));
    return EXIT.ok;
  });
}
