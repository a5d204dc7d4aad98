import type { InboxRulesJob } from '../config/jobs-file.ts';
import { describeError } from '../config/errors.ts';
import { GraphError } from '../graph/graph-error.ts';
import { RULE_SELECT, type GraphMessage } from '../graph/mailbox.ts';
import type { JobContext } from './context.ts';
import { needsBody, planActions, toMessageView, type PlannedAction } from './rules.ts';

/** Where a delta sync stands: the link to call next, and whether the first full pass is done. */
interface DeltaState {
  link: string;
  /** 'initial' until the first deltaLink: messages seen then are acted on only with backfill (or after `actSince`). */
  phase: 'initial' | 'incremental';
  /** After a lost sync state: act on messages received at or after this instant (ms) during the new initial pass. */
  actSince?: number;
  /** When the last deltaLink was reached. */
  completedAt?: number;
}

/** What happened to one message, kept so a replayed page acts on nothing twice. */
interface LedgerEntry {
  done: string[];
  /** A once-only action (forward, webhook) started but not confirmed: never repeated. */
  pending?: string;
}

const LEDGER_TTL_MS = 180 * 24 * 3600_000;
const PAGE_SIZE = 100;
/** Actions that must happen at most once even if a crash leaves us unsure. */
const ONCE_ONLY = new Set(['forwardTo', 'webhook']);

/**
 * Runs a job's rules over the messages that are new (or changed) in its folder since the last run,
 * via message delta [MICROSOFT.md "Graph mail"]. The delta link is stored after each page's actions,
 * so a crash replays at most one page, and the ledger makes that replay act on nothing twice.
 */
export async function runInboxRules(ctx: JobContext, job: InboxRulesJob): Promise<void> {
  const folder = await ctx.mailbox.folder(job.folder);
  const stateKey = `delta:${folder.id}`;
  const select = needsBody(job.rules) ? [...RULE_SELECT, 'body'] : RULE_SELECT;
  let state = (await ctx.store.get<DeltaState>(stateKey)) ?? { link: ctx.mailbox.startDelta(folder.id, { select }), phase: 'initial' as const };
  let resynced = false;

  for (;;) {
    ctx.signal.throwIfAborted();
    let page;
    try {
      page = await ctx.mailbox.deltaPage(state.link, { maxPageSize: PAGE_SIZE, signal: ctx.signal });
    } catch (error) {
      if (error instanceof GraphError && error.isSyncStateLost && !resynced) {
        // Start over, acting only on mail that arrived since the last complete pass; the ledger skips the rest.
        ctx.log.warn({ code: error.remoteCode }, 'delta state expired; starting a new sync');
        resynced = true;
        state = { link: ctx.mailbox.startDelta(folder.id, { select }), phase: 'initial', actSince: state.completedAt ?? (state.phase === 'incremental' ? 0 : undefined) };
        continue;
      }
      throw error;
    }
    for (const message of page.value) {
      if (message['@removed']) continue;
      ctx.report.examined++;
      const act = state.phase === 'incremental' || job.backfill || (state.actSince !== undefined && Date.parse(message.receivedDateTime ?? '') >= state.actSince);
      if (act) await applyRules(ctx, job, message);
    }
    const next: DeltaState = page.deltaLink
      ? { link: page.deltaLink, phase: 'incremental', completedAt: ctx.runStart.getTime() }
      : { ...state, link: page.nextLink ?? state.link };
    if (!page.deltaLink && !page.nextLink) {
      throw new GraphError({ status: 200, code: 'InvalidResponse', message: 'a delta page with neither @odata.nextLink nor @odata.deltaLink', method: 'GET', path: 'messages/delta' });
    }
    await ctx.checkpoint();
    if (!ctx.dryRun) await ctx.store.set(stateKey, next);
    state = next;
    if (page.deltaLink) return;
  }
}

async function applyRules(ctx: JobContext, job: InboxRulesJob, message: GraphMessage): Promise<void> {
  const view = toMessageView(message);
  const planned = planActions(job.rules, view, ctx.runStart);
  if (planned.length === 0) return;
  const ledgerKey = `ledger:${message.id}`;
  const ledger = (await ctx.store.get<LedgerEntry>(ledgerKey)) ?? { done: [] };
  const subject = view.subject;
  // Graph's PATCH replaces the whole category list: carry what earlier categorize steps added.
  let categories = view.categories;
  for (const step of planned) {
    const id = actionId(step);
    if (ledger.done.includes(id)) continue;
    const record = { messageId: message.id, rule: step.rule, action: step.action, value: step.value, subject };
    if (ledger.pending === id) {
      ctx.report.actions.push({ ...record, result: 'skipped', error: 'an earlier run was interrupted while doing this; not repeated so it never happens twice' });
      ledger.done.push(id);
      continue;
    }
    if (ctx.dryRun) {
      ctx.report.actions.push({ ...record, result: 'planned' });
      continue;
    }
    if (ONCE_ONLY.has(step.action)) {
      ledger.pending = id;
      await ctx.store.set(ledgerKey, ledger, LEDGER_TTL_MS);
    }
    try {
      await execute(ctx, message, categories, step);
      if (step.action === 'categorize') categories = [...new Set([...categories, ...(step.value as string[])])];
      ctx.report.actions.push({ ...record, result: 'done' });
    } catch (error) {
      ctx.report.actions.push({ ...record, result: 'failed', error: describeError(error) });
      ctx.log.warn({ messageId: message.id, rule: step.rule, action: step.action, err: error }, 'action failed');
      if (isMove(step)) break;
      continue;
    } finally {
      if (ledger.pending === id) delete ledger.pending;
    }
    ledger.done.push(id);
    await ctx.store.set(ledgerKey, ledger, LEDGER_TTL_MS);
  }
  if (!ctx.dryRun) await ctx.store.set(ledgerKey, ledger, LEDGER_TTL_MS);
}

async function execute(ctx: JobContext, message: GraphMessage, categories: string[], step: PlannedAction): Promise<void> {
  const mailbox = ctx.mailbox;
  switch (step.action) {
    case 'markRead':
      await mailbox.update(message.id, { isRead: step.value as boolean });
      return;
    case 'flag':
      await mailbox.update(message.id, { flag: { flagStatus: step.value ? 'flagged' : 'notFlagged' } });
      return;
    case 'categorize':
      await mailbox.update(message.id, { categories: [...new Set([...categories, ...(step.value as string[])])] });
      return;
    case 'setImportance':
      await mailbox.update(message.id, { importance: step.value as string });
      return;
    case 'moveTo':
      await mailbox.move(message.id, (await mailbox.folder(step.value as string, { create: true })).id);
      return;
    case 'copyTo':
      await mailbox.copy(message.id, (await mailbox.folder(step.value as string, { create: true })).id);
      return;
    case 'delete':
      await mailbox.move(message.id, (await mailbox.folder('deleteditems')).id);
      return;
    case 'forwardTo':
      await mailbox.forward(message.id, step.value as string[]);
      return;
    case 'webhook': {
      const response = await ctx.fetch(step.value as string, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          job: ctx.job,
          rule: step.rule,
          message: { id: message.id, subject: message.subject, from: (message.from as { emailAddress?: { address?: string } } | undefined)?.emailAddress?.address, receivedDateTime: message.receivedDateTime },
        }),
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(15_000)]),
      });
      if (!response.ok) throw new Error(`webhook answered HTTP ${response.status}`);
      await response.body?.cancel();
      return;
    }
  }
}

function isMove(step: PlannedAction): boolean {
  return step.action === 'moveTo' || step.action === 'delete';
}

function actionId(step: PlannedAction): string {
  return `${step.action}:${JSON.stringify(step.value)}`;
}
