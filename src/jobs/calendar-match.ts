/**
 * Calendar rules' match keys: the engine's view of an event and one definition per key. Pure: the run's
 * facts that need I/O (working hours, the other events of the window, what the event looked like when last
 * seen) are computed by src/jobs/calendar-rules.ts and handed in on the view.
 *
 * Decisions: text comparisons are case-insensitive; a list means "any of"; `organizerDomain` matches the
 * domain and its subdomains; `attendeesMoreThan` counts invitees other than rooms and equipment (type
 * `resource`); `myResponse: none` is an invitation not answered yet (Graph's `none` or `notResponded`);
 * `conflicts` means the event overlaps another one the person shows as busy or away (`busy`, `oof`) that is not
 * cancelled or declined; `changed` means start, end or location differ from when the job last saw the event.
 */
import type { CalendarMatchKey, CalendarMatchSpec, MyResponse } from '../config/calendar-rules-schema.ts';
import { SUBJECT_MATCHES_FLAGS } from '../config/jobs-file.ts';

export interface EventView {
  id: string;
  /** For an occurrence or exception: its series master's id. */
  seriesMasterId?: string;
  type: 'singleInstance' | 'occurrence' | 'exception' | 'seriesMaster';
  subject: string;
  organizer?: string;
  /** Invitees that are people (required or optional). */
  attendees: number;
  isOnlineMeeting: boolean;
  responseRequested: boolean;
  myResponse: MyResponse;
  isCancelled: boolean;
  isAllDay: boolean;
  /** Instants (ms). */
  start: number;
  end: number;
  location: string;
  showAs: string;
  categories: string[];
  reminderMinutes: number;
  /** Start, end or location moved since the job last saw the event (false when never seen before). */
  changed: boolean;
  /** Overlaps an event shown busy or away. */
  conflicts: boolean;
  /** Undefined when no rule asks (working hours are then never fetched). */
  outsideWorkingHours?: boolean;
}

type Check<K extends CalendarMatchKey> = (want: NonNullable<CalendarMatchSpec[K]>, e: EventView) => boolean;

const listOf = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
const lower = (s: string) => s.trim().toLowerCase();

function inDomain(address: string, domain: string): boolean {
  const host = lower(address.slice(address.lastIndexOf('@') + 1)).replace(/\.$/, '');
  const d = lower(domain).replace(/^[@.]+/, '').replace(/\.$/, '');
  return address.includes('@') && d !== '' && (host === d || host.endsWith(`.${d}`));
}

const regexCache = new Map<string, RegExp>();
function regex(pattern: string): RegExp {
  let re = regexCache.get(pattern);
  if (!re) regexCache.set(pattern, (re = new RegExp(pattern, SUBJECT_MATCHES_FLAGS)));
  return re;
}

/** One line per key; a missing line is a compile error, so no key is forgotten. */
export const MATCH: { [K in CalendarMatchKey]: Check<K> } = {
  organizer: (want, e) => e.organizer !== undefined && listOf(want).some((a) => lower(a) === lower(e.organizer!)),
  organizerDomain: (want, e) => e.organizer !== undefined && listOf(want).some((d) => inDomain(e.organizer!, d)),
  subjectContains: (want, e) => listOf(want).some((s) => e.subject.toLowerCase().includes(s.toLowerCase())),
  subjectMatches: (want, e) => listOf(want).some((p) => regex(p).test(e.subject)),
  attendeesMoreThan: (want, e) => e.attendees > want,
  isOnlineMeeting: (want, e) => e.isOnlineMeeting === want,
  responseRequested: (want, e) => e.responseRequested === want,
  myResponse: (want, e) => listOf(want).includes(e.myResponse),
  outsideWorkingHours: (want, e) => {
    if (e.outsideWorkingHours === undefined) throw new Error(`Rule engine: outsideWorkingHours was not computed for event ${e.id}; compute it whenever usesKey(rules, 'outsideWorkingHours').`);
    return e.outsideWorkingHours === want;
  },
  conflicts: (want, e) => e.conflicts === want,
  isRecurring: (want, e) => (e.type !== 'singleInstance') === want,
  changed: (want, e) => e.changed === want,
};

/** The keys of `spec` that held (`any[1].organizer` for a sub-match), or undefined when the spec does not hold. */
export function explainMatch(spec: CalendarMatchSpec, e: EventView): string[] | undefined {
  const held: string[] = [];
  for (const key of Object.keys(spec) as (keyof CalendarMatchSpec)[]) {
    if (key === 'any') continue;
    const want = spec[key];
    if (want === undefined) continue;
    if (!(MATCH[key] as Check<typeof key>)(want as never, e)) return undefined;
    held.push(`${key}=${Array.isArray(want) ? want.join('|') : String(want)}`);
  }
  if (spec.any) {
    const index = spec.any.findIndex((sub) => explainMatch(sub, e) !== undefined);
    if (index < 0) return undefined;
    held.push(...explainMatch(spec.any[index]!, e)!.map((k) => `any[${index}].${k}`));
  }
  return held;
}

export function matchesEvent(spec: CalendarMatchSpec, e: EventView): boolean {
  return explainMatch(spec, e) !== undefined;
}

/** Whether some rule (also inside `any`) uses `key`. */
export function usesKey(specs: CalendarMatchSpec[], key: CalendarMatchKey): boolean {
  const uses = (s: CalendarMatchSpec): boolean => s[key] !== undefined || (s.any ?? []).some(uses);
  return specs.some(uses);
}

/** Graph's responseStatus.response in the words of `myResponse`. */
export function myResponseOf(response: string | undefined): MyResponse {
  switch ((response ?? 'none').toLowerCase()) {
    case 'organizer': return 'organizer';
    case 'accepted': return 'accepted';
    case 'tentativelyaccepted': return 'tentative';
    case 'declined': return 'declined';
    default: return 'none';
  }
}

/** A view's working-hours fact: any part of [start, end) outside the days and hours given, in `zone`. */
export function isOutsideWorkingHours(e: Pick<EventView, 'start' | 'end' | 'isAllDay'>, hours: { days: string[]; start: string; end: string }, zone: string): boolean {
  const local = (ms: number) => {
    const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, weekday: 'long', hour: '2-digit', minute: '2-digit', year: 'numeric', month: '2-digit', day: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(ms));
    const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
    return { day: get('weekday').toLowerCase(), date: `${get('year')}-${get('month')}-${get('day')}`, time: `${get('hour')}:${get('minute')}` };
  };
  const days = hours.days.map(lower);
  const from = local(e.start);
  if (!days.includes(from.day)) return true;
  if (e.isAllDay) return false;
  // The end instant is exclusive: a meeting ending at 18:00 sharp is inside hours that end at 18:00.
  const to = local(e.end - 1);
  const start = hours.start.slice(0, 5);
  const end = hours.end.slice(0, 5);
  return from.time < start || to.date !== from.date || to.time >= end;
}
