import { describe } from '../../../config/check-helpers.ts';
import { GraphError } from '../../../graph/graph-error.ts';
import { jobTimeZone, zoneOffset } from '../../../graph/timezone.ts';
import type { ActionRecord, JobStore } from '../../context.ts';
import type { Mailbox } from '../../../graph/mailbox.ts';
import type { Logger } from '../../../config/logger.ts';
import { CHANGES_MAIL, type ActionDefinition } from '../definition.ts';

export interface SnoozeSpec {
  /** As written: `2d`, `90m`, `next monday 08:00`, `tomorrow 7:30`. */
  until: string;
  /** The jobs file's time zone for clock times; absent: the mailbox's own. */
  zone?: string;
}

/** One snoozed message in the job's store (key SNOOZED_KEY): brought back to the Inbox, unread, at `until`. */
export interface SnoozedMessage {
  id: string;
  subject: string;
  until: string;
}

export const SNOOZED_KEY = 'snoozed';
export const SNOOZED_FOLDER = 'Snoozed';
const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
const DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
const DURATION = /^(\d{1,4})\s*([mhdw])$/i;
const CLOCK = /^(?:(next)\s+)?(tomorrow|sunday|monday|tuesday|wednesday|thursday|friday|saturday)(?:\s+(\d{1,2}):(\d{2}))?$/i;

/** The instant `spec` names, from `now`, with clock times in `zone`; undefined when it is not a snooze time. */
export function snoozeUntil(spec: string, now: Date, zone: string): Date | undefined {
  const text = spec.trim().replace(/\s+/g, ' ');
  const d = DURATION.exec(text);
  if (d) return new Date(now.getTime() + Number(d[1]) * UNIT_MS[d[2]!.toLowerCase()]!);
  const c = CLOCK.exec(text);
  if (!c) return undefined;
  const [hour, minute] = [Number(c[3] ?? 8), Number(c[4] ?? 0)];
  if (hour > 23 || minute > 59) return undefined;
  // The local date of `now` in the zone, then the day asked for (a weekday is always a later day, 1 to 7 ahead).
  const local = new Date(now.getTime() + zoneOffset(now.getTime(), zone));
  const day = c[2]!.toLowerCase();
  const ahead = day === 'tomorrow' ? 1 : ((DAYS.indexOf(day) - local.getUTCDay() + 7) % 7 || 7);
  const wall = Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate() + ahead, hour, minute);
  // Wall-clock time in the zone to an instant: the offset at the guess, corrected once for a DST change between.
  const guess = wall - zoneOffset(wall, zone);
  return new Date(wall - zoneOffset(guess, zone));
}

/**
 * `snooze: 2d` or `snooze: "next monday 08:00"`: moves the message to the Snoozed folder and brings it back to
 * the Inbox, unread, at that time (clock times in the jobs file's timezone, else the mailbox's). What is snoozed
 * is kept in the job's store, so it comes back even across restarts: at its time while `mailbox-agent start`
 * runs (src/jobs/snooze-waker.ts), else at the job's first run after it (`run <job>` included).
 */
export const snooze: ActionDefinition<SnoozeSpec, SnoozeSpec> = {
  check: (raw, at, t) => {
    if (typeof raw === 'string' && snoozeUntil(raw, new Date(0), 'UTC')) return { until: raw.trim(), ...(t.timezone ? { zone: t.timezone } : {}) };
    t.add(at, `snooze takes a duration (30m, 2h, 2d, 1w) or a day and time (tomorrow 08:00, next monday 08:00), but it is ${describe(raw)}. Fix: e.g. { snooze: 2d } or { snooze: "next monday 08:00" }.`);
    return undefined;
  },
  plan: (value, state) => (state.first('snooze', '') ? value : undefined),
  execution: {
    kind: 'move',
    async request(ctx, message, value) {
      const zone = value.zone ?? (await jobTimeZone(undefined, () => ctx.mailbox.settings(), ctx.log)).iana;
      const until = snoozeUntil(value.until, ctx.runStart, zone)!;
      const folder = await ctx.mailbox.folder(SNOOZED_FOLDER, { create: true });
      // Written before the move: a crash between the two leaves an entry for a message still in place, which
      // the wake-up moves to the Inbox harmlessly; never a snoozed message nobody brings back.
      const list = (await ctx.store.get<SnoozedMessage[]>(SNOOZED_KEY)) ?? [];
      const entry = { id: message.id, subject: typeof message.subject === 'string' ? message.subject : '', until: until.toISOString() };
      await ctx.store.set(SNOOZED_KEY, [...list.filter((s) => s.id !== message.id), entry]);
      return ctx.mailbox.moveRequest(message.id, folder.id);
    },
  },
  onceOnly: false,
  permission: CHANGES_MAIL,
  bareValue: '…',
  readme: {
    example: 'snooze: "next monday 08:00"',
    text: 'moves the message to a `Snoozed` folder and brings it back to the Inbox, unread, at that time: a duration (`30m`, `2h`, `2d`, `1w`) or `tomorrow`/`[next] <weekday>` with an optional `HH:MM` (default 08:00) in the jobs file\'s timezone, else the mailbox\'s; while `mailbox-agent start` runs it comes back at that time (at once when the agent starts after it), otherwise at the job\'s first run after it (`run <job>` too); kept in the job\'s store across restarts',
  },
};

/**
 * Brings back every snoozed message whose time has come (the `limit` soonest, when given): to the Inbox, unread.
 * A message deleted meanwhile is forgotten; a failure another try may cure keeps it for the next try. With
 * `signal`, stops between two messages once it is aborted (shutdown), keeping what is left. Returns what came
 * back. Callers hold the job's lock (a run, or the snooze waker), so two never bring one message back twice.
 * Example: `await wakeSnoozed({ store, mailbox, log }, new Date())`.
 */
export async function wakeSnoozed(ctx: { store: JobStore; mailbox: Mailbox; log: Logger; signal?: AbortSignal }, now: Date, options: { limit?: number } = {}): Promise<SnoozedMessage[]> {
  const list = (await ctx.store.get<SnoozedMessage[]>(SNOOZED_KEY)) ?? [];
  const due = list.filter((s) => Date.parse(s.until) <= now.getTime()).sort((a, b) => Date.parse(a.until) - Date.parse(b.until)).slice(0, options.limit);
  if (due.length === 0) return [];
  const inbox = await ctx.mailbox.folder('inbox');
  const done = new Set<string>();
  for (const s of due) {
    if (ctx.signal?.aborted) break;
    try {
      await ctx.mailbox.move(s.id, inbox.id);
      await ctx.mailbox.update(s.id, { isRead: false });
      done.add(s.id);
    } catch (error) {
      if (error instanceof GraphError && error.statusCode === 404) done.add(s.id);
      else ctx.log.warn({ messageId: s.id, err: error }, 'a snoozed message could not be brought back yet; it is tried again later');
    }
  }
  await ctx.store.set(SNOOZED_KEY, list.filter((s) => !done.has(s.id)));
  return due.filter((s) => done.has(s.id));
}

/** How a message brought back shows in a run's result and the audit log (the dashboard's recent actions). */
export function unsnoozeRecord(s: SnoozedMessage): ActionRecord {
  return { messageId: s.id, rule: '(snoozed)', action: 'unsnooze', value: s.until, subject: s.subject, result: 'done' };
}

/**
 * Every message the `snooze` action of these inbox-rules jobs holds, soonest first (for the dashboard).
 * Example: `await listSnoozed(jobs.map((name) => jobStore(store, name)), jobNames)`.
 */
export async function listSnoozed(jobs: { name: string; store: Pick<JobStore, 'get'> }[]): Promise<(SnoozedMessage & { job: string })[]> {
  const lists = await Promise.all(jobs.map((j) => j.store.get<SnoozedMessage[]>(SNOOZED_KEY)));
  return jobs.flatMap((j, i) => (lists[i] ?? []).map((s) => ({ ...s, job: j.name }))).sort((a, b) => a.until.localeCompare(b.until));
}
