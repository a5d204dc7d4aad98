import { createHash } from 'node:crypto';
import { findIana } from 'windows-iana';

/**
 * Calendar events of a sandbox mailbox and their Graph JSON. Instants are stored in UTC ms; Graph returns
 * `start`/`end` as `{dateTime, timeZone}` in the zone named by `Prefer: outlook.timezone` (Windows or IANA
 * name), UTC without it [MICROSOFT.md "Graph calendar"; user-list-calendarview].
 */
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
  showAs: 'free' | 'tentative' | 'busy' | 'oof' | 'workingElsewhere';
  createdDateTime: string;
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
  showAs?: StoredEvent['showAs'];
  isCancelled?: boolean;
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

export const EVENT_PROPERTIES = ['id', 'subject', 'bodyPreview', 'body', 'start', 'end', 'isAllDay', 'location', 'organizer', 'isCancelled', 'showAs', 'createdDateTime', 'webLink'];

export function eventJson(e: StoredEvent, zone: { name: string; iana: string }): Record<string, unknown> {
  return {
    '@odata.etag': `W/"${e.id.slice(-12)}"`,
    id: e.id,
    createdDateTime: e.createdDateTime,
    subject: e.subject,
    bodyPreview: e.body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 255),
    body: { contentType: 'html', content: e.body },
    start: { dateTime: localDateTime(Date.parse(e.start), zone.iana), timeZone: zone.name },
    end: { dateTime: localDateTime(Date.parse(e.end), zone.iana), timeZone: zone.name },
    isAllDay: e.isAllDay,
    isCancelled: e.isCancelled,
    showAs: e.showAs,
    location: { displayName: e.location, locationType: 'default' },
    organizer: { emailAddress: { name: e.organizer.name, address: e.organizer.address } },
    webLink: `https://outlook.office365.com/owa/?itemid=${encodeURIComponent(e.id)}&exvsurl=1&path=/calendar/item`,
  };
}
