import type { InboxRulesJob } from '../config/jobs-file.ts';
import { AgentError, describeError } from '../config/errors.ts';
import { BATCH_LIMIT, type BatchRequest, type BatchResult, type GraphPage } from '../graph/client.ts';
import { GraphError } from '../graph/graph-error.ts';
import { RULE_SELECT, type GraphMessage } from '../graph/mailbox.ts';
import type { ActionRecord, JobContext } from './context.ts';
import { fetchNeeds, planActions, selectFor, toMessageView, type MessageView, type PlannedAction } from './rules.ts';
import { ACTIONS } from './rules/actions/index.ts';
import { ActionCallError, type ActionContext, type Execution, type MatchEnv } from './rules/definition.ts';
import { fetchExtras, loadMatchEnv } from './rules/lookups.ts';
import { unsnoozeRecord, wakeSnoozed } from './rules/actions/snooze.ts';

/** Where a delta sync stands: the link to call next, and whether the first full pass is done. */
interface DeltaState {
  link: string;
  /** 'initial' until the first deltaLink: messages seen then are acted on only with backfill (or after `actSince`). */
  phase: 'initial' | 'incremental';
  /** After a lost sync state: act on messages received at or after this instant (ms) during the new initial pass. */
  actSince?: number;
  /** When the last deltaLink was reached. */
  completedAt?: number;
  /** The `$select` the sync started with (Graph keeps it in the links); absent in older states, whose links carry RULE_SELECT. */
  select?: string[];
}

/** What happened to one message, kept so a replayed page acts on nothing twice. */
interface LedgerEntry {
  done: string[];
  /** Once-only actions (forward, webhook, copy) started but not confirmed: never repeated. A string in older entries. */
  pending?: string[] | string;
}

const LEDGER_TTL_MS = 180 * 24 * 3600_000;
/**
 * Delta page size asked with `Prefer: odata.maxpagesize`. Graph documents no cap for message delta; 1000 is
 * the largest `$top` of /messages and what the sandbox honours (docs/microsoft-notes.md). Whatever Graph
 * returns is followed, so a smaller page is only slower.
 */
export const DELTA_PAGE_SIZE = 1000;
/**
 * After a new sync, mail received this long before the last complete pass is looked at again too. Graph's
 * receivedDateTime has whole seconds and comes from Exchange's clock, `actSince` from ours: without slack, mail
 * that arrived just as that pass ran (or on a machine whose clock is ahead) would be passed over for good.
 * Whatever the old pass already did is in the ledger, so looking again never does anything twice.
 */
const ACT_SINCE_SLACK_MS = 60_000;
/**
 * Whether an action must happen at most once (its definition's `onceOnly`): never sent again when a crash or
 * an ambiguous answer (500, 502, 504, a reset or a timeout once sent) leaves us unsure whether it happened;
 * such an action is reported as 'unsure' instead.
 */
const onceOnly = (step: Step) => ACTIONS[step.step.action].onceOnly;
/** Calls the agent makes itself (webhooks) in flight at once (not Graph requests, so not under the mailbox limit). */
const CALLS_PARALLEL = 4;
/** Round-1 batches in flight at once: Outlook's 4 concurrent requests per mailbox (docs/microsoft-notes.md). */
const ROUND1_PARALLEL = 4;

/**
 * Runs a job's rules over the messages that are new (or changed) in its folder since the last run, via
 * message delta [MICROSOFT.md "Graph mail"]. Per page: plan every message, apply the actions in `$batch`es
 * (property changes merged into one PATCH per message, copies and forwards, then the moves), record each
 * in the ledger, and only then store the next link. A failure another try may cure (429/5xx/network/an
 * answer that is not JSON, after the client's own retries) fails the run before the link moves, so the next
 * run replays the page and the ledger makes the replay act on nothing twice. A once-only action whose fate
 * is unknown is reported 'unsure' and never repeated. An action refused for good (4xx) is not retried, and
 * makes the run's `ok` false once every page is done (DESIGN.md: `ok` is false whenever an action failed
 * and will not be retried).
 */
export async function runInboxRules(ctx: JobContext, job: InboxRulesJob): Promise<void> {
  const folderId = await cachedFolderId(ctx, job.folder);
  const stateKey = `delta:${folderId}`;
  const select = selectFor(job.rules);
  const env = await loadMatchEnv(ctx, job.rules);
  // Snoozed messages whose time has come go back to the Inbox first (one store read when there are none).
  if (!ctx.dryRun) {
    for (const s of await wakeSnoozed(ctx, ctx.runStart)) ctx.report.actions.push(unsnoozeRecord(s));
  }
  /** A new sync; after an old one (lost, or not carrying a field the rules now read) it acts only on mail since that one's last complete pass. */
  const newSync = (previous?: DeltaState): DeltaState => {
    const actSince = previous ? previous.completedAt ?? (previous.phase === 'incremental' ? 0 : undefined) : undefined;
    return { link: ctx.mailbox.startDelta(folderId, { select }), phase: 'initial', select, ...(actSince !== undefined ? { actSince } : {}) };
  };
  let state = (await ctx.store.get<DeltaState>(stateKey)) ?? newSync();
  // Graph keeps a delta query's $select in its links: a rule edited to match on a field the link does not
  // carry (to, cc, hasAttachments, bodyContains) would otherwise never see it.
  const missing = select.filter((field) => !(state.select ?? RULE_SELECT).includes(field));
  if (missing.length > 0) {
    ctx.log.info({ missing }, 'the rules now read message fields the stored delta link does not carry; starting a new sync of the folder');
    state = newSync(state);
  }
  let resynced = false;
  // Our own PATCHes and moves come back in the next delta round; reading that round now (acting on
  // whatever else it holds) means the next run with no new mail is a single request.
  let actedInRound = 0;
  let extraRounds = 0;
  // Messages this run changed: they come back in the catch-up rounds and are not counted as examined twice.
  // (Not a set of every message read: at 50,000 messages that kept ~6 MB of ids alive; docs/BENCHMARKS.md.)
  const touched = new Set<string>();
  // Actions refused for good: reported as the run's error once the pages are done.
  const refused: Refused = { count: 0 };
  const finish = () => {
    if (refused.count > 0) {
      throw new AgentError('GRAPH_ERROR', `${refused.count} action${refused.count === 1 ? '' : 's'} failed and will not be retried; the first: ${describeError(refused.first)}`, {
        remedy: 'See the failed actions in the run result or the audit log; fix the rule or the mailbox, then the next new message is handled.',
        cause: refused.first,
      });
    }
  };

  /** Reads one page and plans it at once, so the parsed page is let go before anything waits on it. Never rejects. */
  const readPage = async (from: DeltaState): Promise<{ ok: true; page: PlannedPage } | { ok: false; error: unknown }> => {
    try {
      const page = await ctx.mailbox.deltaPage(from.link, { maxPageSize: DELTA_PAGE_SIZE, signal: ctx.signal });
      return { ok: true, page: await planPage(ctx, job, env, page, from, extraRounds > 0 ? touched : undefined) };
    } catch (error) {
      return { ok: false, error };
    }
  };
  /** The next page, asked for while the current page's last batches are still running. */
  let ahead: { link: string; read: ReturnType<typeof readPage> } | undefined;

  for (;;) {
    ctx.signal.throwIfAborted();
    if (ctx.stop.aborted) {
      // Between pages every action so far is committed and the delta link stored: a clean place to stop.
      throw new AgentError('SHUTTING_DOWN', 'Stopped between two pages because the agent is shutting down.', { remedy: 'Nothing to do: the next run continues where this one stopped.' });
    }
    const read = await (ahead?.link === state.link ? ahead.read : readPage(state));
    ahead = undefined;
    if (!read.ok) {
      const error = read.error;
      if (error instanceof GraphError && error.isSyncStateLost && !resynced) {
        // Start over, acting only on mail that arrived since the last complete pass; the ledger skips the rest.
        ctx.log.warn({ code: error.remoteCode }, 'delta state expired; starting a new sync');
        resynced = true;
        state = newSync(state);
        continue;
      }
      // A folder deleted (or re-created) since its id was cached: the next run looks it up again.
      if (error instanceof GraphError && error.statusCode === 404 && !ctx.dryRun) await ctx.store.delete(`folder:${job.folder.toLowerCase()}`);
      throw error;
    }
    const { nextLink, deltaLink, work } = read.page;
    const next: DeltaState = deltaLink
      ? { link: deltaLink, phase: 'incremental', completedAt: ctx.runStart.getTime(), ...(state.select ? { select: state.select } : {}) }
      : { ...state, link: nextLink ?? state.link };
    // Not past a deltaLink: the next round must see this page's own changes, so it waits for them.
    let askedAhead = false;
    const readAhead = () => {
      if (askedAhead || !nextLink || ctx.stop.aborted) return;
      askedAhead = true;
      ahead = { link: nextLink, read: readPage(next) };
    };
    let ledgers: LedgerWrite[] = [];
    if (work.length > 0) {
      const before = ctx.report.actions.length;
      ledgers = await applyPage(ctx, job, work, touched, refused, readAhead);
      actedInRound += ctx.report.actions.slice(before).filter((a) => a.result === 'done').length;
    }
    readAhead();
    // The page's ledger and the next link in one write (one transaction on SQLite): the link never moves
    // past a page whose ledger is not stored. The audit log is written alongside.
    const commit = await Promise.allSettled([ctx.checkpoint(), ctx.dryRun ? undefined : ctx.store.setMany<unknown>([...ledgers, { key: stateKey, value: next }])]);
    const failed = commit.find((c): c is PromiseRejectedResult => c.status === 'rejected');
    if (failed) throw failed.reason;
    state = next;
    ctx.onProgress?.(ctx.report);
    if (deltaLink) {
      if (ctx.dryRun || actedInRound === 0 || extraRounds >= 2) return finish();
      extraRounds++;
      actedInRound = 0;
    }
  }
}

/** One delta page, planned: the links it ends with and the messages with something to do. */
interface PlannedPage {
  nextLink?: string;
  deltaLink?: string;
  work: PlannedMessage[];
}

/**
 * Plans every message of a page and keeps only what acting needs: the parsed page dies with this call, not
 * after the page's actions (kept, it outlives several young-generation GCs and V8 promotes it to the old
 * generation, where it waits for a full GC: docs/BENCHMARKS.md, peak RSS).
 */
async function planPage(ctx: JobContext, job: InboxRulesJob, env: MatchEnv, page: GraphPage<GraphMessage>, from: DeltaState, seen?: Set<string>): Promise<PlannedPage> {
  if (!page.deltaLink && !page.nextLink) {
    throw new GraphError({ status: 200, code: 'InvalidResponse', message: 'a delta page with neither @odata.nextLink nor @odata.deltaLink', method: 'GET', path: 'messages/delta' });
  }
  const work: PlannedMessage[] = [];
  const plan = (message: GraphMessage, view: MessageView) => {
    // A dry run says why each action would happen (`because`), as `explain` does.
    const planned = planActions(job.rules, view, env, { explain: ctx.dryRun });
    if (planned.length > 0) work.push({ message: slim(message), subject: view.subject, categories: view.categories, planned });
  };
  // Rules that read headers or attachments: fetched for the candidates of the page, then planned; others plan at once.
  const extras = fetchNeeds(job.rules).size > 0;
  let acting: { message: GraphMessage; view: MessageView }[] = [];
  for (const message of page.value) {
    if (message['@removed']) continue;
    // A catch-up round (`seen`: what the run changed) shows our own changes again: those were counted.
    if (!seen?.has(message.id)) ctx.report.examined++;
    const act = from.phase === 'incremental' || job.backfill || (from.actSince !== undefined && Date.parse(message.receivedDateTime ?? '') >= from.actSince - ACT_SINCE_SLACK_MS);
    if (!act) continue;
    if (!extras) plan(message, toMessageView(message));
    else if (!seen?.has(message.id)) acting.push({ message, view: toMessageView(message) });
    // Back only because this run changed it: its header and attachment rules were applied in the earlier round
    // (the ledger has them), so they are not fetched again; rules on the other keys are planned as before.
    else plan(message, { ...toMessageView(message), headers: [], attachments: [] });
  }
  if (extras) {
    acting = await fetchExtras(ctx, job.rules, acting, env);
    for (const { message, view } of acting) plan(message, view);
  }
  return { nextLink: page.nextLink, deltaLink: page.deltaLink, work };
}

/** The folder's id, kept in the job's store so a quiet run is one request (the delta call). */
async function cachedFolderId(ctx: JobContext, name: string): Promise<string> {
  const key = `folder:${name.toLowerCase()}`;
  const cached = await ctx.store.get<string>(key);
  if (cached) return cached;
  const folder = await ctx.mailbox.folder(name);
  if (!ctx.dryRun) await ctx.store.set(key, folder.id);
  return folder.id;
}

/** A message with actions planned: only what acting on it needs, not the whole parsed message. */
interface PlannedMessage {
  message: GraphMessage;
  subject: string;
  categories: string[];
  planned: PlannedAction[];
}

/** The fields applyPage and webhooks read (id, and subject/from/receivedDateTime for a webhook's payload). */
function slim(message: GraphMessage): GraphMessage {
  return { id: message.id, subject: message.subject, from: message.from, receivedDateTime: message.receivedDateTime };
}

interface Step {
  step: PlannedAction;
  id: string;
}

interface MessageWork {
  message: GraphMessage;
  subject: string;
  ledgerKey: string;
  ledger: LedgerEntry;
  pending: Set<string>;
  /** Pending from an interrupted run, reported 'skipped' by this one: done once this run's result is written. */
  skipped: string[];
  patch?: { body: Record<string, unknown>; steps: Step[] };
  graphOps: { step: Step; request: BatchRequest }[];
  /** Actions of kind 'call' (webhooks): done by the agent itself, not through Graph. */
  calls: Step[];
  move?: { step: Step; request?: BatchRequest; error?: unknown };
  failedEarly: { step: Step; error: unknown }[];
  /** Something of this message's must be tried again by the next run: its move waits for that. */
  retryLater?: boolean;
}

/** A failure worth another try by the next run (not a reason to advance past the page). */
class TransientFailure extends Error {}

/** Actions refused for good during a run: how many, and the first reason. */
interface Refused {
  count: number;
  first?: unknown;
}

/** How one action ended; `executed`: whether it may have happened (retry-policy.ts `mayHaveRun`). */
type Outcome = { ok: true; skipped?: string } | { ok: false; error: unknown; executed: boolean | 'unknown' };

/**
 * Acts on one page's planned messages and returns their ledger entries for the caller to store with the next
 * link (on a failure it stores them itself, then throws). `onQueued` is called once every Graph request of
 * the page has been handed to the client (the last ones may still be running).
 */
async function applyPage(ctx: JobContext, job: InboxRulesJob, work: PlannedMessage[], touched: Set<string>, refused: Refused, onQueued?: () => void): Promise<LedgerWrite[]> {
  const actionContext: ActionContext = ctx;
  const items: MessageWork[] = [];
  // The page's ledger in one read (one query on SQLite, Redis and PostgreSQL).
  const ledgers = await ctx.store.getMany<LedgerEntry>(work.map(({ message }) => `ledger:${message.id}`));
  for (const [index, { message, subject, categories: had, planned }] of work.entries()) {
    const ledgerKey = `ledger:${message.id}`;
    const ledger = ledgers[index] ?? { done: [] };
    const pending = new Set(typeof ledger.pending === 'string' ? [ledger.pending] : ledger.pending ?? []);
    const item: MessageWork = { message, subject, ledgerKey, ledger, pending, skipped: [], graphOps: [], calls: [], failedEarly: [] };
    for (const step of planned) {
      const id = actionId(step);
      if (ledger.done.includes(id)) continue;
      if (pending.has(id)) {
        ctx.report.actions.push(recordOf(item, step, 'skipped', 'an earlier run was interrupted while doing this; not repeated so it never happens twice'));
        // Settled as done only with this run's result (the page's last write): a mark written for another step
        // meanwhile keeps it pending, so a run killed before reporting it leaves it for the next run to report.
        if (!ctx.dryRun) item.skipped.push(id);
        continue;
      }
      if (ctx.dryRun) {
        ctx.report.actions.push(recordOf(item, step, 'planned'));
        continue;
      }
      const s: Step = { step, id };
      const execution = ACTIONS[step.action].execution as Execution<unknown>;
      switch (execution.kind) {
        case 'patch':
          item.patch ??= { body: {}, steps: [] };
          item.patch.steps.push(s);
          execution.patch(step.value, item.patch.body, { categories: had });
          break;
        case 'call':
          item.calls.push(s);
          break;
        case 'graph':
        case 'move':
          try {
            const request = await execution.request(actionContext, message, step.value);
            if (execution.kind === 'move') item.move = { step: s, request };
            else item.graphOps.push({ step: s, request });
          } catch (error) {
            if (isTransient(error)) throw error;
            if (execution.kind === 'move') item.move = { step: s, error };
            else item.failedEarly.push({ step: s, error });
          }
          break;
      }
    }
    items.push(item);
  }
  if (ctx.dryRun) return [];

  let transient: unknown;
  const settle = (item: MessageWork, step: Step, result: Outcome) => {
    if (result.ok) {
      item.ledger.done.push(step.id);
      item.pending.delete(step.id);
      if (result.skipped === undefined) touched.add(item.message.id);
      ctx.report.actions.push(result.skipped === undefined ? recordOf(item, step.step, 'done') : recordOf(item, step.step, 'skipped', result.skipped));
      return;
    }
    if (onceOnly(step) && result.executed !== false) {
      // It may have happened: never sent again (the ledger keeps it), and a person is told to look.
      item.ledger.done.push(step.id);
      item.pending.delete(step.id);
      ctx.report.actions.push(recordOf(item, step.step, 'unsure', `${(result.error as Error).message} The answer was lost after the request was sent, so it may or may not have happened; it is not repeated, so it never happens twice. Check by hand (Sent Items for a forward, the folder for a copy).`));
      ctx.log.warn({ messageId: item.message.id, rule: step.step.rule, action: step.step.action, err: result.error }, 'action may or may not have happened; not repeated');
      return;
    }
    const retry = isTransient(result.error);
    // Certainly not run (or harmless to repeat): the next run tries again.
    item.pending.delete(step.id);
    if (retry) {
      transient ??= result.error;
      item.retryLater = true;
    } else {
      item.ledger.done.push(step.id);
      refused.count++;
      refused.first ??= result.error;
    }
    ctx.report.actions.push(recordOf(item, step.step, 'failed', `${describeError(result.error)}${retry ? ' (the next run tries again)' : ' (not retried)'}`));
    ctx.log.warn({ messageId: item.message.id, rule: step.step.rule, action: step.step.action, err: result.error }, 'action failed');
  };
  for (const item of items) for (const f of item.failedEarly) settle(item, f.step, { ok: false, error: f.error, executed: false });

  // Round 1: one PATCH per message, copies and forwards, in chained $batches of 20; calls (webhooks) alongside.
  // Round 2: the moves, each after everything else of its message has settled (not for one whose earlier
  // actions the next run must retry: after a move the replayed page would no longer show it). A message's
  // move is sent as soon as its own round-1 work is done, so the mailbox's 4 slots stay busy through the
  // page instead of draining between the rounds.
  const options = { signal: ctx.signal, statusOnly: true };
  const round1: { item: MessageWork; steps: Step[]; request: BatchRequest }[] = [];
  for (const item of items) {
    if (item.patch) round1.push({ item, steps: item.patch.steps, request: ctx.mailbox.updateRequest(item.message.id, item.patch.body) });
    for (const op of item.graphOps) round1.push({ item, steps: [op.step], request: op.request });
  }
  const waitingFor = new Map<MessageWork, number>();
  for (const r of round1) waitingFor.set(r.item, (waitingFor.get(r.item) ?? 0) + 1);
  for (const item of items) if (item.calls.length > 0) waitingFor.set(item, (waitingFor.get(item) ?? 0) + item.calls.length);
  const moves: Promise<void>[] = [];
  const movable: MessageWork[] = [];
  const sendMoves = (all: boolean) => {
    while (movable.length >= BATCH_LIMIT || (all && movable.length > 0)) {
      const chunk = movable.splice(0, BATCH_LIMIT);
      moves.push(ctx.graph.batch(chunk.map((item) => item.move!.request!), options).then((results) => {
        chunk.forEach((item, i) => settle(item, item.move!.step, outcome(results[i]!)));
      }));
    }
  };
  const release = (item: MessageWork) => {
    if (!item.move || item.retryLater) return;
    if (item.move.error) settle(item, item.move.step, { ok: false, error: item.move.error, executed: false });
    else {
      movable.push(item);
      sendMoves(false);
    }
  };
  const settled = (item: MessageWork) => {
    const left = waitingFor.get(item)! - 1;
    waitingFor.set(item, left);
    if (left === 0) release(item);
  };
  // Once-only actions are marked pending just before they are sent, so a crash can never make them happen twice
  // and gives up only what was in flight (the replay reports those 'skipped'); the rest of the page, not sent yet,
  // is done by the replay. So round-1 batches go out ROUND1_PARALLEL at a time (the mailbox's concurrency),
  // each marked when it leaves, not all queued (and marked) at once.
  const mark = pendingMarker(ctx);
  const chunks: (typeof round1)[] = [];
  for (let i = 0; i < round1.length; i += BATCH_LIMIT) chunks.push(round1.slice(i, i + BATCH_LIMIT));
  const sendRound1 = async () => {
    for (let chunk = chunks.shift(); chunk; chunk = chunks.shift()) {
      await mark(chunk.flatMap((r) => r.steps.map((step) => ({ item: r.item, step }))));
      const results = await ctx.graph.batch(chunk.map((r) => r.request), options);
      chunk.forEach((r, k) => {
        for (const s of r.steps) settle(r.item, s, outcome(results[k]!));
        settled(r.item);
      });
    }
  };
  const first: Promise<void>[] = Array.from({ length: Math.min(ROUND1_PARALLEL, chunks.length) }, sendRound1);
  first.push(runCalls(actionContext, items, mark, (item, step, result) => {
    settle(item, step, result);
    settled(item);
  }));
  for (const item of items) if (!waitingFor.has(item)) release(item);
  const outcomes = await Promise.allSettled(first);
  sendMoves(true);
  // Every Graph request of the page is queued: the caller may ask for the next page, which takes the next free slot.
  if (outcomes.every((o) => o.status === 'fulfilled')) onQueued?.();
  outcomes.push(...(await Promise.allSettled(moves)));

  const writes = ledgerWrites(items);
  const thrown = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (thrown === undefined && transient === undefined) return writes;
  // What settled is kept even if a batch threw (aborted, refused origin): the replay skips it.
  await ctx.store.setMany(writes);
  if (thrown) throw thrown.reason;
  await ctx.checkpoint();
  throw transient instanceof Error ? transient : new TransientFailure(String(transient));
}

/** The page's actions of kind 'call' (webhooks), CALLS_PARALLEL at a time. */
async function runCalls(ctx: ActionContext, items: MessageWork[], mark: (steps: { item: MessageWork; step: Step }[]) => Promise<void>, settle: (item: MessageWork, step: Step, r: Outcome) => void): Promise<void> {
  const queue = items.flatMap((item) => item.calls.map((step) => ({ item, step })));
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const { item, step } = next;
      // A store that cannot take the mark fails the page before the call is made (the replay tries again).
      await mark([next]);
      try {
        const execution = ACTIONS[step.step.action].execution as Execution<unknown>;
        if (execution.kind !== 'call') throw new Error(`Rule engine: ${step.step.action} is not done by the agent itself.`);
        const result = await execution.run(ctx, item.message, step.step);
        settle(item, step, result ? { ok: true, skipped: result.skipped } : { ok: true });
      } catch (error) {
        // ActionCallError and GraphError say whether it may have run (the same rule as a Graph write); anything else: unsure.
        settle(item, step, { ok: false, error, executed: error instanceof ActionCallError || error instanceof GraphError ? error.executed : 'unknown' });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CALLS_PARALLEL, queue.length) }, worker));
}

function outcome(r: BatchResult): Outcome {
  if (r.status >= 200 && r.status < 300 && !r.error) return { ok: true };
  return { ok: false, error: r.error ?? new Error(`HTTP ${r.status}`), executed: r.executed };
}

/** Throttling, Graph busy, the network, or garbage: not the message's fault, so the page is not passed over. */
function isTransient(error: unknown): boolean {
  if (error instanceof ActionCallError) return error.transient;
  if (error instanceof TransientFailure) return true;
  return error instanceof GraphError && error.transient;
}

/** One message's ledger entry, as written to the job's store. */
type LedgerWrite = { key: string; value: LedgerEntry; ttlMs: number };

/**
 * The messages' ledger entries. `final`: with this run's result (the page's commit, or its failure), when what the
 * run reported 'skipped' becomes done; before that (a pending mark) those stay pending.
 */
function ledgerWrites(items: MessageWork[], final = true): LedgerWrite[] {
  return items.map((item) => {
    const done = final && item.skipped.length ? [...item.ledger.done, ...item.skipped] : item.ledger.done;
    const pending = final ? [...item.pending].filter((id) => !item.skipped.includes(id)) : [...item.pending];
    return { key: item.ledgerKey, value: { done, ...(pending.length ? { pending } : {}) }, ttlMs: LEDGER_TTL_MS };
  });
}

/**
 * Marks the once-only steps among `steps` pending in the store (one write each call), before they are sent. The
 * writes of one page go one after another, each taking the messages' state when it runs: two marks of one message
 * written out of order would otherwise let the older one drop the newer pending mark.
 */
function pendingMarker(ctx: JobContext): (steps: { item: MessageWork; step: Step }[]) => Promise<void> {
  let last: Promise<void> = Promise.resolve();
  return (steps) => {
    const marked = new Set<MessageWork>();
    for (const { item, step } of steps) {
      if (!onceOnly(step)) continue;
      item.pending.add(step.id);
      marked.add(item);
    }
    if (marked.size === 0) return Promise.resolve();
    const write = last.then(() => saveLedgers(ctx, [...marked]));
    last = write.catch(() => undefined);
    return write;
  };
}

/** Pending marks of many messages in one write (one transaction on SQLite). */
async function saveLedgers(ctx: JobContext, items: MessageWork[]): Promise<void> {
  await ctx.store.setMany(ledgerWrites(items, false));
}

/**
 * One report record, written out as an object literal: V8 (Node 20) gives every `{ ...record, result }` its
 * own hidden class, ~250 bytes more per record, which a run keeps for every action it took (37k on a
 * 50,000-message mailbox: ~9 MB; docs/BENCHMARKS.md, peak RSS).
 */
function recordOf(item: MessageWork, step: PlannedAction, result: ActionRecord['result'], error?: string): ActionRecord {
  const { rule, action, value, because } = step;
  if (error !== undefined) return { messageId: item.message.id, rule, action, value, subject: item.subject, result, error };
  return because === undefined
    ? { messageId: item.message.id, rule, action, value, subject: item.subject, result }
    : { messageId: item.message.id, rule, action, value, subject: item.subject, result, because };
}

function actionId(step: PlannedAction): string {
  return `${step.action}:${JSON.stringify(step.value)}`;
}
