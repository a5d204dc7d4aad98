import type { CalendarActionName, CalendarRulesJob } from '../config/calendar-rules-schema.ts';
import { AgentError, describeError } from '../config/errors.ts';
import { Calendar, eventInstant, type EventAnswer, type EventChanges, type GraphEvent } from '../graph/calendar.ts';
import { BATCH_LIMIT, type BatchRequest } from '../graph/client.ts';
import { GraphError } from '../graph/graph-error.ts';
import { jobTimeZone, toIana } from '../graph/timezone.ts';
import { ACTIONS, planCalendarActions, type PlannedCalendarAction } from './calendar-actions.ts';
import { isOutsideWorkingHours, myResponseOf, usesKey, type EventView } from './calendar-match.ts';
import type { ActionRecord, JobContext } from './context.ts';

/** Where the calendarView delta sync stands. The window is fixed inside the links, so it moves only by a new sync. */
interface SyncState {
  link: string;
  /** The window's start (ms): the run that began the sync. */
  windowStart: number;
  windowDays: number;
  /** Until the first deltaLink of a sync: its round lists every event of the window. */
  initial?: boolean;
}

/** What the job knew of an event of the window at its last commit: start, end, location, shown busy. */
interface IndexEntry {
  s: number;
  e: number;
  l: string;
  b: boolean;
}

/** What was done for an event (or series), so a replayed round acts on nothing twice. */
interface LedgerEntry {
  done: string[];
  /** Webhooks and notifications started but not confirmed: never repeated. */
  pending?: string[];
}

type LedgerWrite = { key: string; value: LedgerEntry; ttlMs: number };

/** A record of the run report: the inbox rules' shape, with the event's id, start and the keys that matched. */
type CalendarRecord = ActionRecord & { eventId: string; start: string; why: string };

const DAY_MS = 86_400_000;
const STATE_KEY = 'calendar:delta';
const INDEX_KEY = 'calendar:index';
const LEDGER_TTL_MS = 400 * DAY_MS;
/** Events per delta page (`Prefer: odata.maxpagesize`); Graph documents no maximum for calendarView delta. */
export const CALENDAR_PAGE_SIZE = 100;
const WEBHOOK_TIMEOUT_MS = 15_000;

/**
 * Acts on the person's own calendar [docs/microsoft-notes.md "Calendar rules"]: follows calendarView delta over
 * the next `window` days (a quiet run is the one request for the stored deltaLink), plans each event changed since
 * the last run with the rules, answers invitations, changes events and calls webhooks, then stores the ledger,
 * the new link and what it knows of the window in one write. A failure before that write replays the round next
 * time, and the ledger and the event's own responseStatus (read again just before answering) make the replay
 * answer nothing twice. Graph fixes the window in the delta tokens, so once a day a new sync moves it forward.
 */
export async function runCalendarRules(ctx: JobContext, job: CalendarRulesJob, options: { timezone?: string; notifyUrl?: URL } = {}): Promise<void> {
  const calendar = new Calendar(ctx.mailbox);
  const now = ctx.runStart.getTime();
  const newSync = (): SyncState => ({
    link: calendar.startDelta(ctx.runStart, new Date(now + job.windowDays * DAY_MS)), windowStart: now, windowDays: job.windowDays, initial: true,
  });
  let state = await ctx.store.get<SyncState>(STATE_KEY);
  if (!state || state.windowDays !== job.windowDays || now - state.windowStart >= DAY_MS) {
    if (state) ctx.log.info({ windowDays: job.windowDays }, 'moving the calendar window forward: a new calendarView delta sync (Graph keeps the window in the delta link)');
    state = newSync();
  }
  let index = (await ctx.store.get<Record<string, IndexEntry>>(INDEX_KEY)) ?? {};
  const hours = workingHoursOnce(ctx, calendar, job, options.timezone);
  // Events this run has listed: a catch-up round shows our own changes again, and they are not counted twice.
  const listed = new Set<string>();
  let resynced = false;
  let extraRounds = 0;
  for (;;) {
    ctx.signal.throwIfAborted();
    let round: Round;
    try {
      round = await readRound(ctx, calendar, state.link);
    } catch (error) {
      if (error instanceof GraphError && error.isSyncStateLost && !resynced) {
        // Start over; the ledger, and each event's own answer, keep the new full round from acting twice.
        ctx.log.warn({ code: error.remoteCode }, 'calendar delta state expired; starting a new sync');
        resynced = true;
        state = newSync();
        continue;
      }
      throw error;
    }
    const nextIndex: Record<string, IndexEntry> = state.initial ? {} : { ...index };
    for (const id of round.removed) delete nextIndex[id];
    for (const event of round.events) nextIndex[event.id] = entryOf(event);
    const views: EventView[] = [];
    for (const event of round.events) {
      if (!listed.has(event.id)) ctx.report.examined++;
      listed.add(event.id);
      const view = viewOf(event, index, nextIndex);
      // Events already over (the window may have started up to a day ago) are left alone.
      if (view.end > now && !Number.isNaN(view.start)) views.push(view);
    }
    if (views.length > 0 && usesKey(job.rules.map((r) => r.match), 'outsideWorkingHours')) {
      const { days, start, end, zone } = await hours();
      for (const view of views) view.outsideWorkingHours = isOutsideWorkingHours(view, { days, start, end }, zone);
    }
    const planned = views.flatMap((view) => planCalendarActions(job.rules, view).map((step) => ({ step, view })));
    const before = ctx.report.actions.length;
    const ledgers = planned.length > 0 ? await act(ctx, calendar, planned, options.notifyUrl) : [];
    const next: SyncState = { link: round.deltaLink, windowStart: state.windowStart, windowDays: state.windowDays };
    if (!ctx.dryRun) {
      await ctx.store.setMany<unknown>([...ledgers, { key: STATE_KEY, value: next }, { key: INDEX_KEY, value: nextIndex }]);
    }
    await ctx.checkpoint();
    state = next;
    index = nextIndex;
    ctx.onProgress?.(ctx.report);
    const acted = ctx.report.actions.slice(before).filter((a) => a.result === 'done').length;
    // Our own answers and changes come back in the next round: reading it now keeps the next run to one request.
    // Everything so far is committed: a clean place to stop when the agent shuts down.
    if (ctx.dryRun || acted === 0 || extraRounds >= 2 || ctx.stop.aborted) return;
    extraRounds++;
  }
}

interface Round {
  events: GraphEvent[];
  removed: string[];
  deltaLink: string;
}

/** Every page of one delta round, up to its deltaLink; an event listed twice counts once, as last listed. */
async function readRound(ctx: JobContext, calendar: Calendar, link: string): Promise<Round> {
  const latest = new Map<string, GraphEvent | null>();
  for (let next = link; ;) {
    const page = await calendar.deltaPage(next, { maxPageSize: CALENDAR_PAGE_SIZE, signal: ctx.signal });
    for (const event of page.value) {
      latest.delete(event.id);
      latest.set(event.id, event['@removed'] ? null : event);
    }
    if (page.deltaLink) {
      const events = [...latest.values()].filter((e): e is GraphEvent => e !== null);
      const removed = [...latest.entries()].filter(([, e]) => e === null).map(([id]) => id);
      return { events, removed, deltaLink: page.deltaLink };
    }
    if (!page.nextLink) {
      throw new GraphError({ status: 200, code: 'InvalidResponse', message: 'a delta page with neither @odata.nextLink nor @odata.deltaLink', method: 'GET', path: 'calendarView/delta' });
    }
    next = page.nextLink;
  }
}

function entryOf(e: GraphEvent): IndexEntry {
  const busy = (e.showAs === 'busy' || e.showAs === 'oof') && e.isCancelled !== true && myResponseOf(e.responseStatus?.response) !== 'declined';
  return { s: eventInstant(e.start), e: eventInstant(e.end), l: e.location?.displayName ?? '', b: busy };
}

/** The rule engine's view of an event; `changed` against what was known before this round, `conflicts` against the window now. */
export function viewOf(e: GraphEvent, before: Record<string, IndexEntry>, now: Record<string, IndexEntry>): EventView {
  const start = eventInstant(e.start);
  const end = eventInstant(e.end);
  const location = e.location?.displayName ?? '';
  const seen = before[e.id];
  const attendees = (e.attendees ?? []).filter((a) => a.type !== 'resource').length;
  return {
    id: e.id,
    ...(e.seriesMasterId ? { seriesMasterId: e.seriesMasterId } : {}),
    type: e.type ?? 'singleInstance',
    subject: e.subject ?? '',
    ...(e.organizer?.emailAddress?.address ? { organizer: e.organizer.emailAddress.address } : {}),
    attendees,
    isOnlineMeeting: e.isOnlineMeeting === true,
    responseRequested: e.responseRequested !== false,
    myResponse: e.isOrganizer === true ? 'organizer' : myResponseOf(e.responseStatus?.response),
    isCancelled: e.isCancelled === true,
    isAllDay: e.isAllDay === true,
    start,
    end,
    location,
    showAs: e.showAs ?? 'busy',
    categories: Array.isArray(e.categories) ? e.categories : [],
    reminderMinutes: typeof e.reminderMinutesBeforeStart === 'number' ? e.reminderMinutesBeforeStart : 15,
    changed: seen !== undefined && (seen.s !== start || seen.e !== end || seen.l !== location),
    conflicts: Object.entries(now).some(([id, other]) => id !== e.id && other.b && other.s < end && other.e > start),
  };
}

/** The working hours `outsideWorkingHours` compares with: the job's own, else mailboxSettings; read at most once per run. */
function workingHoursOnce(ctx: JobContext, calendar: Calendar, job: CalendarRulesJob, fileZone?: string) {
  let found: Promise<{ days: string[]; start: string; end: string; zone: string }> | undefined;
  return () => (found ??= (async () => {
    if (job.workingHours) {
      const zone = (await jobTimeZone(fileZone, () => ctx.mailbox.settings(), ctx.log)).iana;
      return { ...job.workingHours, zone };
    }
    const hours = await calendar.workingHours().catch((error: unknown) => {
      // Outlook.com mailboxes: Graph refuses mailboxSettings (docs/microsoft-notes.md "Personal accounts").
      if (!(error instanceof GraphError) || error.statusCode !== 403) throw error;
      throw new AgentError('GRAPH_ERROR', 'Graph refused the mailbox\'s working hours (mailboxSettings, 403; Outlook.com accounts get this), and a calendar rule uses outsideWorkingHours.', {
        remedy: `Give the job its own: workingHours: { start: "08:00", end: "18:00" } under the job ${job.name} (times in the jobs file's timezone:).`,
        cause: error,
      });
    });
    if (!hours) {
      throw new AgentError('GRAPH_ERROR', 'The mailbox has no working hours set, and a calendar rule uses outsideWorkingHours.', {
        remedy: `Set working hours in Outlook (Settings → Calendar), or give the job its own: workingHours: { start: "08:00", end: "18:00" } under the job ${job.name}.`,
      });
    }
    return { days: hours.daysOfWeek, start: hours.startTime, end: hours.endTime, zone: toIana(hours.timeZone?.name ?? fileZone ?? 'UTC') };
  })());
}

interface Target {
  id: string;
  view: EventView;
  ledgerKey: string;
  ledger: LedgerEntry;
  steps: { step: PlannedCalendarAction; id: string }[];
}

/**
 * Acts on a round's planned steps, grouped by the event they go to, and returns the ledger entries for the caller
 * to store with the next link. A failure Graph may retry is thrown after what was done is stored, so the round
 * is read again next run; any other failure is reported and not tried again.
 */
async function act(ctx: JobContext, calendar: Calendar, planned: { step: PlannedCalendarAction; view: EventView }[], notifyUrl?: URL): Promise<LedgerWrite[]> {
  const targets = new Map<string, Target>();
  for (const { step, view } of planned) {
    const target = targets.get(step.targetId) ?? { id: step.targetId, view, ledgerKey: `ledger:${step.targetId}`, ledger: { done: [] }, steps: [] };
    targets.set(step.targetId, target);
    const id = stepId(step, view);
    if (!target.steps.some((s) => s.id === id)) target.steps.push({ step, id });
  }
  const record = (t: Target, step: PlannedCalendarAction, result: ActionRecord['result'], error?: string) => {
    const r: CalendarRecord = {
      messageId: t.id, eventId: t.id, rule: step.rule, action: step.action, value: step.value, subject: t.view.subject,
      start: new Date(t.view.start).toISOString(), why: step.why.join(', '), result, ...(error !== undefined ? { error } : {}),
    };
    ctx.report.actions.push(r);
  };
  // The ledger is read in a dry run too, so it plans only what a real run would still do.
  const list = [...targets.values()];
  const stored = await ctx.store.getMany<LedgerEntry>(list.map((t) => t.ledgerKey));
  list.forEach((t, i) => {
    t.ledger = stored[i] ?? { done: [] };
    t.steps = t.steps.filter(({ step, id }) => {
      if (t.ledger.done.includes(id)) return false;
      if (t.ledger.pending?.includes(id)) {
        record(t, step, 'skipped', 'an earlier run was interrupted while doing this; not repeated so it never happens twice');
        done(t, id);
        return false;
      }
      return true;
    });
  });
  if (ctx.dryRun) {
    for (const t of list) for (const { step } of t.steps) record(t, step, 'planned');
    return [];
  }
  const writes = () => list.map((t) => ({ key: t.ledgerKey, value: t.ledger, ttlMs: LEDGER_TTL_MS }));
  let transient: unknown;
  const failed = (t: Target, step: PlannedCalendarAction, id: string, error: unknown) => {
    const retry = isTransient(error);
    if (retry) transient ??= error;
    else done(t, id);
    record(t, step, 'failed', `${describeError(error)}${retry ? ' (the next run tries again)' : ''}`);
    ctx.log.warn({ eventId: t.id, rule: step.rule, action: step.action, err: error }, 'calendar action failed');
  };
  const kindOf = (a: CalendarActionName) => ACTIONS[a].kind;

  // Webhooks and notifications are marked pending before they are sent: a crash can never make them happen twice.
  const once = list.flatMap((t) => t.steps.filter((s) => kindOf(s.step.action) === 'once').map((s) => ({ t, ...s })));
  for (const { t, id } of once) (t.ledger.pending ??= []).push(id);
  if (once.length > 0) await ctx.store.setMany(writes());

  // Answers, one event at a time: the event's own answer is read just before, so a person's answer always wins.
  for (const t of list) {
    for (const { step, id } of t.steps.filter((s) => s.step.action === 'respond')) {
      const { response, comment, sendResponse } = step.value as { response: EventAnswer; comment?: string; sendResponse: boolean };
      try {
        const current = await calendar.event(t.id, ['responseStatus', 'isOrganizer'], ctx.signal);
        const answer = current.isOrganizer ? 'organizer' : myResponseOf(current.responseStatus?.response);
        if (answer !== 'none') {
          record(t, step, 'skipped', answer === 'organizer' ? 'you organize this event' : `already answered (${answer}); an answer already given is never overridden`);
        } else {
          await calendar.respond(t.id, response, { comment, sendResponse, signal: ctx.signal });
          record(t, step, 'done');
        }
        done(t, id);
      } catch (error) {
        failed(t, step, id, error);
      }
    }
  }

  // Property changes: one PATCH per event (categories replace the whole list), in $batches.
  const patches: { t: Target; steps: { step: PlannedCalendarAction; id: string }[]; request: BatchRequest }[] = [];
  for (const t of list) {
    const steps = t.steps.filter((s) => kindOf(s.step.action) === 'patch');
    if (steps.length === 0) continue;
    const changes: EventChanges = {};
    for (const { step } of steps) {
      if (step.action === 'categorize') changes.categories = [...new Set([...(changes.categories ?? t.view.categories), ...(step.value as string[])])];
      if (step.action === 'showAs') changes.showAs = step.value as string;
      if (step.action === 'reminderMinutes') changes.reminderMinutesBeforeStart = step.value as number;
    }
    patches.push({ t, steps, request: calendar.updateRequest(t.id, changes) });
  }
  for (let i = 0; i < patches.length; i += BATCH_LIMIT) {
    const chunk = patches.slice(i, i + BATCH_LIMIT);
    try {
      const results = await ctx.graph.batch(chunk.map((p) => p.request), { signal: ctx.signal, statusOnly: true });
      chunk.forEach((p, k) => {
        const r = results[k]!;
        for (const { step, id } of p.steps) {
          if (r.status >= 200 && r.status < 300 && !r.error) {
            done(p.t, id);
            record(p.t, step, 'done');
          } else failed(p.t, step, id, r.error ?? new Error(`HTTP ${r.status}`));
        }
      });
    } catch (error) {
      for (const p of chunk) for (const { step, id } of p.steps) failed(p.t, step, id, error);
    }
  }

  for (const { t, step, id } of once) {
    try {
      if (step.action === 'webhook') await post(ctx, step.value as string, payload(ctx, t, step));
      else await post(ctx, notifyTarget(notifyUrl), { event: 'calendar-rule', ...payload(ctx, t, step), text: notifyText(t.view, step) });
      record(t, step, 'done');
    } catch (error) {
      // It may have arrived: never sent again (the ledger marks it done).
      record(t, step, 'failed', describeError(error));
      ctx.log.warn({ eventId: t.id, rule: step.rule, action: step.action, err: error }, 'calendar action failed');
    }
    done(t, id);
  }

  if (transient !== undefined) {
    await ctx.store.setMany(writes());
    await ctx.checkpoint();
    throw transient;
  }
  return writes();
}

function done(t: Target, id: string): void {
  if (!t.ledger.done.includes(id)) t.ledger.done.push(id);
  if (t.ledger.pending) {
    t.ledger.pending = t.ledger.pending.filter((p) => p !== id);
    if (t.ledger.pending.length === 0) delete t.ledger.pending;
  }
}

/**
 * The ledger id of a step: one answer per event (or series) ever; a property change per value; a webhook or
 * notification once per version of the event (start, end, location), so a meeting that moves again is told again.
 */
function stepId(step: PlannedCalendarAction, view: EventView): string {
  if (step.action === 'respond') return 'respond';
  const base = `${step.action}:${JSON.stringify(step.value)}`;
  return ACTIONS[step.action].kind === 'once' ? `${base}@${view.start}/${view.end}/${view.location}` : base;
}

function payload(ctx: JobContext, t: Target, step: PlannedCalendarAction) {
  const v = t.view;
  return {
    job: ctx.job,
    rule: step.rule,
    calendarEvent: { id: t.id, subject: v.subject, start: new Date(v.start).toISOString(), end: new Date(v.end).toISOString(), location: v.location, organizer: v.organizer ?? '', myResponse: v.myResponse },
  };
}

function notifyText(v: EventView, step: PlannedCalendarAction): string {
  if (typeof step.value === 'string') return step.value;
  return `"${v.subject}" (${new Date(v.start).toISOString()}${v.location ? `, ${v.location}` : ''}) matched the calendar rule ${step.rule}${v.changed ? '; it moved' : ''}.`;
}

function notifyTarget(url?: URL): string {
  if (!url) {
    throw new AgentError('CONFIG_INVALID', 'A calendar rule has a notify action, but NOTIFY_URL is not set.', { remedy: 'Set NOTIFY_URL in .env to the webhook that should get the message, or use { webhook: URL } in the rule.' });
  }
  return url.href;
}

/** A plain POST (never the Graph token) to a webhook or NOTIFY_URL. */
async function post(ctx: JobContext, url: string, body: unknown): Promise<void> {
  const response = await ctx.fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(WEBHOOK_TIMEOUT_MS)]),
  });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`${new URL(url).origin} answered HTTP ${response.status}`);
}

/** Throttling, Graph busy, or the network: not the event's fault, so the round is read again next run. */
function isTransient(error: unknown): boolean {
  return error instanceof GraphError && (error.statusCode === 0 || error.statusCode === 429 || error.statusCode === 424 || error.statusCode >= 500);
}
