import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { findIana } from 'windows-iana';

/**
 * Calendar events of a sandbox mailbox and their Graph JSON. Instants are stored in UTC ms; Graph returns
 * `start`/`end` as `{dateTime, timeZone}` in the zone named by `Prefer: outlook.timezone` (Windows or IANA
 * name), UTC without it [MICROSOFT.md "Graph calendar"; user-list-calendarview].
 */
export type EventResponse = 'none' | 'organizer' | 'tentativelyAccepted' | 'accepted' | 'declined' | 'notResponded';
export type ShowAs = 'free' | 'tentative' | 'busy' | 'oof' | 'workingElsewhere' | 'unknown';

export interface StoredEvent {
  id: string;
  subject: string;
  start: string; // ISO UTC
  end: string; // ISO UTC
  isAllDay: boolean;
  location: string;
  organizer: { name: string; address: string };
  body: string;
  isCancelled: boolean;
  showAs: ShowAs;
  createdDateTime: string;
  // Fields below were added for calendar rules; absent in older saved states (defaults in eventJson).
  /** The mailbox seq of the event's last change (calendarView delta compares it with its watermark). */
  changedSeq?: number;
  lastModifiedDateTime?: string;
  attendees?: { name: string; address: string; type: 'required' | 'optional' | 'resource' }[];
  /** The mailbox owner's own answer ('organizer' for a meeting they organize). */
  responseStatus?: { response: EventResponse; time: string };
  responseRequested?: boolean;
  isOnlineMeeting?: boolean;
  categories?: string[];
  reminderMinutesBeforeStart?: number;
  isReminderOn?: boolean;
  /** A series: `count` occurrences, every `interval` days or weeks from `start` (UTC arithmetic). */
  recurrence?: { type: 'daily' | 'weekly'; interval: number; count: number };
  /** Per occurrence index: what differs from the series (an exception), or that it was deleted. */
  exceptions?: Record<string, EventOverride>;
  /** Deleted: kept as a tombstone so delta can report `@removed`. */
  removed?: boolean;
  /** Not on the calendar before this instant (ISO): an invitation arriving later (admin hook). */
  deliverAt?: string;
  /** Every response sent for the event or one of its occurrences (accept/tentativelyAccept/decline), oldest first. */
  responses?: ResponseRecord[];
}

export interface EventOverride {
  changedSeq: number;
  start?: string;
  end?: string;
  location?: string;
  subject?: string;
  isCancelled?: boolean;
  showAs?: ShowAs;
  categories?: string[];
  reminderMinutesBeforeStart?: number;
  responseStatus?: { response: EventResponse; time: string };
  removed?: boolean;
}

export interface ResponseRecord {
  eventId: string;
  response: 'accepted' | 'tentativelyAccepted' | 'declined';
  comment: string;
  sendResponse: boolean;
  at: string;
  /** 'graph': through the API (the agent); 'person': by hand in Outlook (admin hook). */
  by: 'graph' | 'person';
}

export interface NewEvent {
  subject: string;
  /** ISO 8601 with an offset or Z, e.g. 2026-04-13T09:00:00+02:00. */
  start: string;
  end: string;
  location?: string;
  organizer?: string | { name?: string; address: string };
  isAllDay?: boolean;
  body?: string;
  showAs?: ShowAs;
  isCancelled?: boolean;
  /** Invitees (addresses or {name, address, type}); the mailbox owner is added as required when invited. */
  attendees?: (string | { name?: string; address: string; type?: 'required' | 'optional' | 'resource' })[];
  /** Default: 'notResponded' when an organizer is given (an invitation), 'organizer' otherwise (the owner's own event). */
  responseStatus?: EventResponse;
  responseRequested?: boolean;
  isOnlineMeeting?: boolean;
  categories?: string[];
  reminderMinutesBeforeStart?: number;
  recurrence?: { type: 'daily' | 'weekly'; interval?: number; count: number };
  /** ISO instant: the invitation appears on the calendar (and in delta) only from then on. */
  deliverAt?: string;
}

const WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;

export function makeEvent(input: NewEvent, salt: string, serial: number, nowIso: string): StoredEvent {
  if (!input || typeof input.subject !== 'string') throw new Error('subject (string) is required');
  for (const k of ['start', 'end'] as const) {
    if (typeof input[k] !== 'string' || !WITH_OFFSET.test(input[k])) throw new Error(`${k} must be an ISO 8601 date-time with an offset or Z, e.g. 2026-04-13T09:00:00+02:00`);
  }
  const start = Date.parse(input.start);
  const end = Date.parse(input.end);
  if (!(end > start)) throw new Error('end must be after start');
  const organizer = typeof input.organizer === 'string' ? { name: input.organizer, address: input.organizer }
    : input.organizer ? { name: input.organizer.name ?? input.organizer.address, address: input.organizer.address }
      : { name: 'Organizer', address: 'organizer@contoso.test' };
  const digest = createHash('sha256').update(`${salt}\u0000event\u0000${serial}`).digest();
  const recurrence = input.recurrence;
  if (recurrence && (!['daily', 'weekly'].includes(recurrence.type) || !(Number.isInteger(recurrence.count) && recurrence.count > 0 && recurrence.count <= 500))) {
    throw new Error('recurrence must be {type: daily|weekly, interval?: n, count: 1..500}');
  }
  if (input.deliverAt !== undefined && Number.isNaN(Date.parse(input.deliverAt))) throw new Error('deliverAt must be an ISO 8601 instant');
  const attendees = (input.attendees ?? []).map((a) => (typeof a === 'string'
    ? { name: a, address: a, type: 'required' as const }
    : { name: a.name ?? a.address, address: a.address, type: a.type ?? 'required' }));
  return {
    id: `AAMkAGVlbnQ${digest.toString('base64url')}=`,
    subject: input.subject,
    start: new Date(start).toISOString(),
    end: new Date(end).toISOString(),
    isAllDay: input.isAllDay === true,
    location: input.location ?? '',
    organizer,
    body: input.body ?? '',
    isCancelled: input.isCancelled === true,
    showAs: input.showAs ?? 'busy',
    createdDateTime: nowIso,
    changedSeq: serial,
    lastModifiedDateTime: nowIso,
    attendees,
    responseStatus: { response: input.responseStatus ?? (input.organizer ? 'notResponded' : 'organizer'), time: '0001-01-01T00:00:00Z' },
    responseRequested: input.responseRequested ?? true,
    isOnlineMeeting: input.isOnlineMeeting === true,
    categories: input.categories ?? [],
    reminderMinutesBeforeStart: input.reminderMinutesBeforeStart ?? 15,
    isReminderOn: true,
    ...(recurrence ? { recurrence: { type: recurrence.type, interval: recurrence.interval ?? 1, count: recurrence.count } } : {}),
    ...(input.deliverAt ? { deliverAt: new Date(input.deliverAt).toISOString() } : {}),
  };
}

/** An IANA zone for a Windows or IANA name, or undefined when neither is known. */
export function ianaZone(name: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return findIana(name)[0];
  }
}

/** `2026-04-13T09:00:00.0000000` in the zone (Graph's dateTimeTimeZone format). */
export function localDateTime(ms: number, zone: string): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date(ms));
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '00';
  return `${get('year')}-${get('month')}-${get('day')}T${get('hour')}:${get('minute')}:${get('second')}.0000000`;
}

/** Parses calendarView's startDateTime/endDateTime: an offset counts; without one the value is UTC. */
export function parseWindowBound(value: string | null): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/i.test(v)) return undefined;
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(v) && v.includes('T');
  const ms = Date.parse(hasZone ? v : `${v.includes('T') ? v : `${v}T00:00:00`}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

export const EVENT_PROPERTIES = [
  'id', 'subject', 'bodyPreview', 'body', 'start', 'end', 'isAllDay', 'location', 'organizer', 'isCancelled', 'showAs', 'createdDateTime', 'webLink',
  'lastModifiedDateTime', 'type', 'seriesMasterId', 'recurrence', 'attendees', 'responseStatus', 'responseRequested', 'isOrganizer',
  'isOnlineMeeting', 'categories', 'reminderMinutesBeforeStart', 'isReminderOn',
];

/** One entry of a calendar view: a single event, or an occurrence or exception of a series [delta-query-events]. */
export type EventInstance = StoredEvent & { type: 'singleInstance' | 'occurrence' | 'exception' | 'seriesMaster'; seriesMasterId?: string };

const DAY_MS = 86_400_000;

/** `AAMk…=` + occurrence index: opaque to clients, decodable here. */
export function occurrenceId(masterId: string, index: number): string {
  return `${masterId.replace(/=$/, '')}AAEO${String(index).padStart(3, '0')}=`;
}

function parseOccurrenceId(id: string): { masterId: string; index: number } | undefined {
  const m = /^(.*)AAEO(\d{3,})=$/.exec(id);
  return m ? { masterId: `${m[1]}=`, index: Number(m[2]) } : undefined;
}

function occurrenceStart(e: StoredEvent, index: number): number {
  const r = e.recurrence!;
  return Date.parse(e.start) + index * r.interval * (r.type === 'weekly' ? 7 : 1) * DAY_MS;
}

/**
 * A series' occurrences with their exceptions applied, or the event itself; masters are not in a calendar view.
 * With `withRemoved`, deleted ones come too (flagged `removed`) so delta can report them.
 */
export function expandEvent(e: StoredEvent, withRemoved = false): EventInstance[] {
  if (e.deliverAt) return [];
  if (!e.recurrence) return e.removed && !withRemoved ? [] : [{ ...e, type: 'singleInstance' }];
  const out: EventInstance[] = [];
  const length = Date.parse(e.end) - Date.parse(e.start);
  for (let k = 0; k < e.recurrence.count; k++) {
    const o = e.exceptions?.[String(k)];
    const removed = e.removed === true || o?.removed === true;
    if (removed && !withRemoved) continue;
    const start = occurrenceStart(e, k);
    out.push({
      ...e,
      start: new Date(start).toISOString(),
      end: new Date(start + length).toISOString(),
      ...(o ? stripUndefined({ start: o.start, end: o.end, location: o.location, subject: o.subject, isCancelled: o.isCancelled, showAs: o.showAs, categories: o.categories, reminderMinutesBeforeStart: o.reminderMinutesBeforeStart, responseStatus: o.responseStatus }) : {}),
      id: occurrenceId(e.id, k),
      type: o && !o.removed ? 'exception' : 'occurrence',
      seriesMasterId: e.id,
      changedSeq: Math.max(e.changedSeq ?? 0, o?.changedSeq ?? 0),
      recurrence: undefined,
      exceptions: undefined,
      responses: undefined,
      removed,
    });
  }
  return out;
}

function stripUndefined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** What a calendar view shows: every live instance, by start. */
export function expandEvents(events: StoredEvent[]): EventInstance[] {
  return events.flatMap((e) => expandEvent(e)).sort((a, b) => a.start.localeCompare(b.start));
}

/** What `/events` lists: single events and series masters, without deleted ones or invitations not yet arrived. */
export function listedEvents(events: StoredEvent[]): StoredEvent[] {
  return events.filter((e) => !e.removed && !e.deliverAt);
}

export function eventJson(e: StoredEvent | EventInstance, zone: { name: string; iana: string }): Record<string, unknown> {
  const type = 'type' in e ? e.type : e.recurrence ? 'seriesMaster' : 'singleInstance';
  const response = e.responseStatus ?? { response: 'organizer', time: '0001-01-01T00:00:00Z' };
  return {
    '@odata.etag': `W/"${createHash('sha1').update(`${e.id}:${e.changedSeq ?? 0}`).digest('base64').slice(0, 22)}"`,
    id: e.id,
    createdDateTime: e.createdDateTime,
    lastModifiedDateTime: e.lastModifiedDateTime ?? e.createdDateTime,
    categories: e.categories ?? [],
    reminderMinutesBeforeStart: e.reminderMinutesBeforeStart ?? 15,
    isReminderOn: e.isReminderOn ?? true,
    subject: e.subject,
    bodyPreview: e.body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 255),
    body: { contentType: 'html', content: e.body },
    start: { dateTime: localDateTime(Date.parse(e.start), zone.iana), timeZone: zone.name },
    end: { dateTime: localDateTime(Date.parse(e.end), zone.iana), timeZone: zone.name },
    isAllDay: e.isAllDay,
    isCancelled: e.isCancelled,
    isOrganizer: response.response === 'organizer',
    responseRequested: e.responseRequested ?? true,
    showAs: e.showAs,
    type,
    seriesMasterId: 'seriesMasterId' in e && e.seriesMasterId ? e.seriesMasterId : null,
    recurrence: type === 'seriesMaster' && e.recurrence ? recurrenceJson(e, zone) : null,
    responseStatus: response,
    isOnlineMeeting: e.isOnlineMeeting ?? false,
    location: { displayName: e.location, locationType: 'default' },
    attendees: (e.attendees ?? []).map((a) => ({ type: a.type, status: { response: 'none', time: '0001-01-01T00:00:00Z' }, emailAddress: { name: a.name, address: a.address } })),
    organizer: { emailAddress: { name: e.organizer.name, address: e.organizer.address } },
    webLink: `https://outlook.office365.com/owa/?itemid=${encodeURIComponent(e.id)}&exvsurl=1&path=/calendar/item`,
  };
}

function recurrenceJson(e: StoredEvent, zone: { iana: string }): Record<string, unknown> {
  const r = e.recurrence!;
  const startDate = localDateTime(Date.parse(e.start), zone.iana).slice(0, 10);
  const day = new Intl.DateTimeFormat('en-US', { timeZone: zone.iana, weekday: 'long' }).format(new Date(e.start)).toLowerCase();
  return {
    pattern: { type: r.type, interval: r.interval, month: 0, dayOfMonth: 0, daysOfWeek: r.type === 'weekly' ? [day] : [], firstDayOfWeek: 'sunday', index: 'first' },
    range: { type: 'numbered', startDate, endDate: '0001-01-01', recurrenceTimeZone: zone.iana, numberOfOccurrences: r.count },
  };
}

// ---------- the mailbox side: changes, responses, delta ----------

/** A calendar request, as src/sandbox/graph.ts hands it over (so this file needs none of its internals). */
export interface CalendarCall {
  box: CalendarBox;
  method: string;
  query: URLSearchParams;
  body: unknown;
  maxPageSize?: number;
  zone: { name: string; iana: string };
  /** `${origin}/v1.0/${me | users/{id}}` */
  linkBase: string;
  contextUrl: (suffix: string) => string;
  /** Bumped by the admin to expire every delta token. */
  generation: number;
  secret: Buffer;
  now: number;
  setStatus(status: number): void;
}

/** The part of the sandbox mailbox this file uses. */
export interface CalendarBox {
  seq: number;
  readonly events: Map<string, StoredEvent>;
  onChange: () => void;
}

export class CalendarError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

const notFound = () => new CalendarError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');

function bump(box: CalendarBox): number {
  box.seq += 1;
  box.onChange();
  return box.seq;
}

/** Invitations whose `deliverAt` has come appear now, as a change delta reports. */
export function deliverDue(box: CalendarBox, now: number): void {
  for (const e of box.events.values()) {
    if (e.deliverAt && Date.parse(e.deliverAt) <= now) {
      delete e.deliverAt;
      e.changedSeq = bump(box);
      e.lastModifiedDateTime = new Date(now).toISOString();
    }
  }
}

/** The stored event (series or single) an id names, and the occurrence index when it names an occurrence. */
export function findEvent(box: CalendarBox, id: string): { event: StoredEvent; index?: number } | undefined {
  const direct = box.events.get(id);
  if (direct) return direct.removed || direct.deliverAt ? undefined : { event: direct };
  const occ = parseOccurrenceId(id);
  const master = occ && box.events.get(occ.masterId);
  if (!occ || !master?.recurrence || master.removed || master.deliverAt || occ.index >= master.recurrence.count || master.exceptions?.[String(occ.index)]?.removed) return undefined;
  return { event: master, index: occ.index };
}

/** Changes an event, a whole series, or one occurrence (which becomes an exception). */
export function changeEvent(box: CalendarBox, id: string, change: Omit<EventOverride, 'changedSeq'>, now: number): EventInstance | StoredEvent {
  const found = findEvent(box, id);
  if (!found) throw notFound();
  const seq = bump(box);
  const { event, index } = found;
  event.lastModifiedDateTime = new Date(now).toISOString();
  if (index === undefined) {
    Object.assign(event, stripUndefined(change as Record<string, unknown>));
    event.changedSeq = seq;
    return event;
  }
  event.exceptions ??= {};
  const key = String(index);
  event.exceptions[key] = { ...event.exceptions[key], ...stripUndefined(change as Record<string, unknown>), changedSeq: seq };
  return expandEvent(event, true).find((i) => i.id === id)!;
}

const RESPONSES = { accept: 'accepted', tentativelyAccept: 'tentativelyAccepted', decline: 'declined' } as const;

/**
 * accept / tentativelyAccept / decline: 202 Accepted with no body; the event's responseStatus becomes the answer
 * (for a series master: every occurrence without an answer of its own) [event-accept; docs/microsoft-notes.md].
 */
export function respond(box: CalendarBox, id: string, verb: keyof typeof RESPONSES, body: unknown, now: number, by: ResponseRecord['by'] = 'graph'): void {
  const found = findEvent(box, id);
  if (!found) throw notFound();
  const b = (body ?? {}) as { comment?: unknown; sendResponse?: unknown };
  if (b.comment !== undefined && typeof b.comment !== 'string') throw new CalendarError(400, 'BadRequest', "Cannot convert the literal to the expected type for property 'comment'.");
  if (b.sendResponse !== undefined && typeof b.sendResponse !== 'boolean') throw new CalendarError(400, 'BadRequest', "Cannot convert the literal to the expected type for property 'sendResponse'.");
  if ((found.event.responseStatus?.response ?? 'organizer') === 'organizer') {
    throw new CalendarError(400, 'ErrorInvalidRequest', "Your request can't be completed. You can't respond to a meeting you organized.");
  }
  const time = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const responseStatus = { response: RESPONSES[verb], time };
  if (found.index === undefined && found.event.exceptions) {
    // A series' answer reaches the occurrences that have none of their own.
    for (const o of Object.values(found.event.exceptions)) if (o.responseStatus?.response === 'notResponded' || o.responseStatus?.response === 'none') delete o.responseStatus;
  }
  changeEvent(box, id, { responseStatus }, now);
  (found.event.responses ??= []).push({ eventId: id, response: RESPONSES[verb], comment: typeof b.comment === 'string' ? b.comment : '', sendResponse: b.sendResponse !== false, at: time, by });
}

const SHOW_AS: ShowAs[] = ['free', 'tentative', 'busy', 'oof', 'workingElsewhere', 'unknown'];

function patchEvent(call: CalendarCall, id: string): Record<string, unknown> {
  const b = call.body;
  if (!b || typeof b !== 'object' || Array.isArray(b)) throw new CalendarError(400, 'BadRequest', 'Empty Payload. JSON content expected.');
  const patch = b as Record<string, unknown>;
  const bad = (p: string) => new CalendarError(400, 'BadRequest', `Cannot convert the literal '${String(patch[p])}' to the expected type for property '${p}'.`);
  const change: Omit<EventOverride, 'changedSeq'> = {};
  for (const key of Object.keys(patch)) {
    const v = patch[key];
    if (key === 'categories') {
      if (!Array.isArray(v) || !v.every((c) => typeof c === 'string')) throw bad(key);
      change.categories = v as string[];
    } else if (key === 'showAs') {
      if (!SHOW_AS.includes(v as ShowAs)) throw bad(key);
      change.showAs = v as ShowAs;
    } else if (key === 'reminderMinutesBeforeStart') {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(key);
      change.reminderMinutesBeforeStart = v;
    } else if (key === 'subject' || key === 'start' || key === 'end' || key === 'location') {
      // An attendee's copy of a meeting: Outlook keeps the organizer's fields (the sandbox refuses rather than diverge).
      throw new CalendarError(400, 'ErrorInvalidRequest', `The sandbox does not change '${key}' of an event; only categories, showAs and reminderMinutesBeforeStart.`);
    } else {
      throw new CalendarError(400, 'RequestBroker--ParseUri', `Could not find a property named '${key}' on type 'microsoft.graph.event'.`);
    }
  }
  const changed = changeEvent(call.box, id, change, call.now);
  return { '@odata.context': call.contextUrl('events/$entity'), ...eventJson(changed, call.zone) };
}

/** Whether src/sandbox/graph.ts should hand `rest` (after /me or /users/{id}) to calendarRoute. */
export function isCalendarRoute(rest: string[]): boolean {
  const [a, b, c] = rest;
  return (a === 'calendar' && rest.length === 1)
    || (a === 'calendarView' && b === 'delta' && rest.length === 2)
    || (a === 'calendar' && b === 'calendarView' && c === 'delta' && rest.length === 3)
    || (a === 'events' && rest.length >= 2 && rest.length <= 3)
    || (a === 'calendar' && b === 'events' && rest.length >= 3 && rest.length <= 4);
}

/** Writes need Calendars.ReadWrite [event-accept, event-update]; reads Calendars.Read. */
export function isCalendarWrite(method: string, rest: string[]): boolean {
  return (rest[0] === 'events' || rest[0] === 'calendar') && method !== 'GET';
}

/** calendarView/delta, events/{id} (GET, PATCH), events/{id}/accept|tentativelyAccept|decline. */
export function calendarRoute(call: CalendarCall, rest: string[]): unknown {
  deliverDue(call.box, call.now);
  const path = rest[0] === 'calendar' ? rest.slice(1) : rest;
  if (path.length === 0) {
    if (call.method !== 'GET') throw new CalendarError(405, 'BadRequest', `The HTTP method '${call.method}' is not supported for this resource.`);
    return calendarJson(call);
  }
  if (path[0] === 'calendarView') {
    if (call.method !== 'GET') throw new CalendarError(405, 'BadRequest', `The HTTP method '${call.method}' is not supported for this resource.`);
    return calendarViewDelta(call);
  }
  const [, id, action] = path as [string, string, string | undefined];
  if (action === undefined) {
    if (call.method === 'GET') {
      const found = findEvent(call.box, id);
      if (!found) throw notFound();
      const instance = found.index === undefined ? found.event : expandEvent(found.event).find((i) => i.id === id)!;
      const full = eventJson(instance, call.zone);
      const select = call.query.get('$select');
      if (!select) return { '@odata.context': call.contextUrl('events/$entity'), ...full };
      const out: Record<string, unknown> = { '@odata.context': call.contextUrl('events/$entity'), '@odata.etag': full['@odata.etag'], id };
      for (const f of select.split(',').map((s) => s.trim()).filter(Boolean)) {
        if (!EVENT_PROPERTIES.includes(f)) throw new CalendarError(400, 'RequestBroker--ParseUri', `Could not find a property named '${f}' on type 'microsoft.graph.event'.`);
        out[f] = full[f];
      }
      return out;
    }
    if (call.method === 'PATCH') return patchEvent(call, id);
    throw new CalendarError(405, 'BadRequest', `The HTTP method '${call.method}' is not supported for this resource.`);
  }
  if (action in RESPONSES && call.method === 'POST') {
    respond(call.box, id, action as keyof typeof RESPONSES, call.body, call.now);
    call.setStatus(202);
    return undefined;
  }
  throw new CalendarError(400, 'BadRequest', `Resource not found for the segment '${action}'.`);
}

/** The primary calendar resource (GET /me/calendar) [resources/calendar]. */
function calendarJson(call: CalendarCall): Record<string, unknown> {
  const full: Record<string, unknown> = {
    '@odata.context': call.contextUrl('calendar/$entity'), id: `AAMkAGNhbGVuZGFy${createHash('sha256').update(call.linkBase).digest('base64url').slice(0, 24)}=`,
    name: 'Calendar', color: 'auto', hexColor: '', isDefaultCalendar: true, changeKey: 'DwAAABYAAAA', canShare: true, canViewPrivateItems: true,
    canEdit: true, allowedOnlineMeetingProviders: ['teamsForBusiness'], defaultOnlineMeetingProvider: 'teamsForBusiness', isTallyingResponses: true, isRemovable: false,
    owner: { name: '', address: '' },
  };
  const select = call.query.get('$select');
  if (!select) return full;
  const out: Record<string, unknown> = { '@odata.context': full['@odata.context'], id: full.id };
  for (const f of select.split(',').map((s) => s.trim()).filter(Boolean)) out[f] = full[f];
  return out;
}

/** Inside a delta token: the window, the round's watermark and bound, and where the page stopped. */
interface DeltaToken {
  s: number; // window start (ms)
  e: number; // window end (ms)
  w: number; // changes after this seq
  u?: number; // this round's upper seq
  c?: [number, string]; // cursor: last (changedSeq, id) returned in this round
  i: boolean; // initial round
  g: number; // generation
}

function encodeToken(t: DeltaToken, secret: Buffer): string {
  const json = Buffer.from(JSON.stringify(t)).toString('base64url');
  return `${json}.${createHmac('sha256', secret).update(json).digest('base64url').slice(0, 16)}`;
}

function decodeToken(token: string, secret: Buffer): DeltaToken {
  const [json, mac] = token.split('.');
  const expected = json ? createHmac('sha256', secret).update(json).digest('base64url').slice(0, 16) : '';
  if (!json || !mac || mac.length !== expected.length || !timingSafeEqual(Buffer.from(mac), Buffer.from(expected))) {
    throw new CalendarError(400, 'BadRequest', 'The sync state is invalid or corrupt.');
  }
  return JSON.parse(Buffer.from(json, 'base64url').toString('utf8')) as DeltaToken;
}

const DELTA_DEFAULT_PAGE = 10;

/**
 * GET calendarView/delta [event-delta; delta-query-events; docs/microsoft-notes.md "Calendar rules"]: the window
 * comes only with the first request and lives in the tokens after; `$select`, `$filter`, `$orderby` are refused.
 * Initial round: every instance in the window. Later rounds: instances changed since the watermark; one deleted,
 * or changed to lie outside the window, comes as `{"@removed": {"reason": "deleted"}}`.
 */
function calendarViewDelta(call: CalendarCall): Record<string, unknown> {
  const skip = call.query.get('$skiptoken');
  const dtok = call.query.get('$deltatoken');
  let t: DeltaToken;
  if (skip || dtok) {
    t = decodeToken((skip ?? dtok)!, call.secret);
    if (t.g !== call.generation) throw new CalendarError(410, 'SyncStateNotFound', 'The sync state generation is invalid or has expired. Please restart the sync.');
    if (dtok) t = { ...t, i: false, u: undefined, c: undefined };
  } else {
    for (const option of ['$select', '$filter', '$orderby', '$expand', '$search']) {
      if (call.query.has(option)) throw new CalendarError(400, 'ErrorInvalidUrlQuery', `The following parameters are not supported with change tracking over the 'CalendarView' resource: '${option}'.`);
    }
    const s = parseWindowBound(call.query.get('startDateTime') ?? call.query.get('startdatetime'));
    const e = parseWindowBound(call.query.get('endDateTime') ?? call.query.get('enddatetime'));
    if (s === undefined || e === undefined) {
      throw new CalendarError(400, 'ErrorInvalidParameter', 'This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.');
    }
    t = { s, e, w: 0, i: true, g: call.generation };
  }
  const upper = t.u ?? call.box.seq;
  const pageSize = Math.max(1, Math.min(call.maxPageSize ?? DELTA_DEFAULT_PAGE, 1000));
  const inWindow = (i: EventInstance) => Date.parse(i.start) < t.e && Date.parse(i.end) > t.s;
  type Item = { seq: number; id: string; instance: EventInstance; gone: boolean };
  const items: Item[] = [];
  for (const event of call.box.events.values()) {
    for (const instance of expandEvent(event, !t.i)) {
      const seq = instance.changedSeq ?? 0;
      if (seq > upper || (!t.i && seq <= t.w)) continue;
      const gone = instance.removed === true || !inWindow(instance);
      if (t.i && gone) continue;
      items.push({ seq, id: instance.id, instance, gone });
    }
  }
  items.sort((a, b) => a.seq - b.seq || a.id.localeCompare(b.id));
  const after = t.c ? items.filter((it) => it.seq > t.c![0] || (it.seq === t.c![0] && it.id > t.c![1])) : items;
  const page = after.slice(0, pageSize);
  const body: Record<string, unknown> = { '@odata.context': `${call.linkBase.replace(/\/v1\.0\/.*$/, '/v1.0')}/$metadata#Collection(event)` };
  const link = `${call.linkBase}/calendarView/delta`;
  if (after.length > pageSize) {
    const last = page[page.length - 1]!;
    body['@odata.nextLink'] = `${link}?$skiptoken=${encodeToken({ ...t, u: upper, c: [last.seq, last.id] }, call.secret)}`;
  } else {
    body['@odata.deltaLink'] = `${link}?$deltatoken=${encodeToken({ s: t.s, e: t.e, w: upper, i: false, g: t.g }, call.secret)}`;
  }
  body.value = page.map((it) => (it.gone
    ? { '@odata.type': '#microsoft.graph.event', id: it.id, '@removed': { reason: 'deleted' } }
    : { '@odata.type': '#microsoft.graph.event', ...eventJson(it.instance, call.zone) }));
  return body;
}

/** Every response sent for the mailbox's events, oldest first (admin: tests check a response went out once). */
export function responsesOf(box: CalendarBox): ResponseRecord[] {
  return [...box.events.values()].flatMap((e) => e.responses ?? []).sort((a, b) => a.at.localeCompare(b.at));
}

/** Deletes an event, a series, or one occurrence (kept as a tombstone for delta). */
export function removeEvent(box: CalendarBox, id: string, now: number): void {
  const found = findEvent(box, id);
  if (!found) throw notFound();
  if (found.index === undefined) {
    found.event.removed = true;
    found.event.changedSeq = bump(box);
    found.event.lastModifiedDateTime = new Date(now).toISOString();
  } else changeEvent(box, id, { removed: true }, now);
}
