import { toPage, type BatchRequest, type GraphPage } from './client.ts';
import type { Mailbox } from './mailbox.ts';
import { toIana, zoneOffset } from './timezone.ts';

/**
 * The primary calendar of one mailbox through Graph, for jobs that act on events (calendar rules). Like
 * `Mailbox`, jobs use this and never build URLs. Facts and sources: docs/microsoft-notes.md "Calendar rules".
 * Example: `const cal = new Calendar(ctx.mailbox); await cal.respond(id, 'accept', { comment: 'Thanks' })`.
 */
export class Calendar {
  constructor(private readonly mailbox: Mailbox) {}

  /**
   * The first request of a calendarView delta sync over [start, end). The window is fixed for the sync's whole
   * life: later requests only follow `@odata.nextLink`/`@odata.deltaLink`, which carry it; `$select` is refused.
   */
  startDelta(start: Date, end: Date): string {
    return this.mailbox.path(`/calendarView/delta?startDateTime=${encodeURIComponent(start.toISOString())}&endDateTime=${encodeURIComponent(end.toISOString())}`);
  }

  /** One page of a calendarView delta sync; `timeZone` renders start/end there (`Prefer: outlook.timezone`). */
  async deltaPage(link: string, options: { maxPageSize?: number; timeZone?: string; signal?: AbortSignal } = {}): Promise<GraphPage<GraphEvent>> {
    const prefer = [
      ...(options.maxPageSize ? [`odata.maxpagesize=${options.maxPageSize}`] : []),
      ...(options.timeZone ? [`outlook.timezone="${options.timeZone}"`] : []),
    ];
    const { body } = await this.mailbox.graph.get<Record<string, unknown>>(link, { headers: prefer.length ? { prefer: prefer.join(', ') } : undefined, signal: options.signal });
    return toPage<GraphEvent>(body, link);
  }

  /** An event's current state, e.g. its `responseStatus` just before answering for the person. */
  async event(id: string, select?: string[], signal?: AbortSignal): Promise<GraphEvent> {
    return (await this.mailbox.graph.get<GraphEvent>(this.mailbox.path(`/events/${enc(id)}${select ? `?$select=${select.join(',')}` : ''}`), { signal })).body;
  }

  /** accept / tentativelyAccept / decline: 202 Accepted, no body [event-accept]. */
  async respond(id: string, response: EventAnswer, options: { comment?: string; sendResponse?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    const { url, body } = this.respondRequest(id, response, options);
    await this.mailbox.graph.post(url, body, { signal: options.signal });
  }

  respondRequest(id: string, response: EventAnswer, options: { comment?: string; sendResponse?: boolean } = {}): { url: string; body: Record<string, unknown> } {
    return {
      url: this.mailbox.path(`/events/${enc(id)}/${RESPOND_VERB[response]}`),
      body: { ...(options.comment ? { comment: options.comment } : {}), sendResponse: options.sendResponse ?? true },
    };
  }

  /** A PATCH of the event's own properties (categories replace the whole list), for a `$batch`. */
  updateRequest(id: string, changes: EventChanges): BatchRequest {
    return { method: 'PATCH', url: this.mailbox.path(`/events/${enc(id)}`), body: changes };
  }

  /** The person's working hours (mailboxSettings.workingHours, in its own time zone) [workinghours resource]. */
  async workingHours(): Promise<WorkingHours | undefined> {
    const hours = (await this.mailbox.settings()).workingHours as WorkingHours | undefined;
    return Array.isArray(hours?.daysOfWeek) && typeof hours.startTime === 'string' && typeof hours.endTime === 'string' ? hours : undefined;
  }
}

export type EventAnswer = 'accept' | 'tentative' | 'decline';
const RESPOND_VERB: Record<EventAnswer, string> = { accept: 'accept', tentative: 'tentativelyAccept', decline: 'decline' };

export interface EventChanges {
  categories?: string[];
  showAs?: string;
  reminderMinutesBeforeStart?: number;
}

export interface WorkingHours {
  daysOfWeek: string[];
  /** `08:00:00.0000000` */
  startTime: string;
  endTime: string;
  timeZone?: { name?: string };
}

/** The event fields calendar rules read (calendarView delta returns every property; `$select` is not allowed). */
export interface GraphEvent {
  id: string;
  subject?: string | null;
  start?: { dateTime: string; timeZone: string };
  end?: { dateTime: string; timeZone: string };
  isAllDay?: boolean;
  isCancelled?: boolean;
  isOrganizer?: boolean;
  showAs?: string;
  type?: 'singleInstance' | 'occurrence' | 'exception' | 'seriesMaster';
  seriesMasterId?: string | null;
  responseRequested?: boolean;
  responseStatus?: { response?: string; time?: string };
  isOnlineMeeting?: boolean;
  categories?: string[];
  reminderMinutesBeforeStart?: number;
  location?: { displayName?: string | null };
  organizer?: { emailAddress?: { name?: string; address?: string } };
  attendees?: { type?: string; emailAddress?: { address?: string } }[];
  '@removed'?: { reason: string };
  [key: string]: unknown;
}

/**
 * The instant of an event's `start` or `end`: `dateTime` is wall-clock time in `timeZone`, which is UTC unless
 * the request asked for another with `Prefer: outlook.timezone` [event-delta; docs/microsoft-notes.md].
 * Example: `eventInstant({ dateTime: '2026-04-13T09:00:00.0000000', timeZone: 'UTC' })` → Date.UTC(2026, 3, 13, 9).
 */
export function eventInstant(t: { dateTime: string; timeZone?: string } | undefined): number {
  if (!t || typeof t.dateTime !== 'string') return NaN;
  const asUtc = Date.parse(`${t.dateTime.slice(0, 23)}Z`);
  const zone = t.timeZone && t.timeZone.toUpperCase() !== 'UTC' ? toIana(t.timeZone) : 'UTC';
  if (zone === 'UTC' || Number.isNaN(asUtc)) return asUtc;
  // The offset at the wall-clock guess, corrected once for a guess on the other side of a DST change.
  const first = asUtc - zoneOffset(asUtc, zone);
  return asUtc - zoneOffset(first, zone);
}

function enc(id: string): string {
  return encodeURIComponent(id);
}
