import type { NewEvent } from './calendar.ts';

/**
 * A working week's calendar for a seeded user, so `agenda-digest` shows something on a fresh sandbox:
 * a stand-up every weekday, a lunch, and a few meetings that vary by weekday, some of them invitations still to
 * answer (so the README's calendar-rules example has work on a fresh sandbox). Times are local to the
 * user's own time zone (`iana`), written with that day's UTC offset, so daylight saving is right.
 * Example: `sampleDay('Europe/Berlin', Date.UTC(2026, 10, 23))` → the events of Monday 23 November 2026.
 */
export function sampleDay(iana: string, dayUtc: number): NewEvent[] {
  const date = new Date(dayUtc);
  const weekday = date.getUTCDay();
  if (weekday === 0 || weekday === 6) return [];
  const ymd = date.toISOString().slice(0, 10);
  const at = (hhmm: string) => `${ymd}T${hhmm}:00${offsetOn(iana, ymd, hhmm)}`;
  const event = (subject: string, from: string, to: string, extra: Partial<NewEvent> = {}): NewEvent => ({ subject, start: at(from), end: at(to), ...extra });
  const day: NewEvent[] = [event('Team stand-up', '09:30', '09:45', { location: 'Teams' })];
  if (weekday === 1) day.push(event('Weekly planning', '10:00', '11:00', { location: 'Room 4.12', organizer: { name: 'Bob Jones', address: 'bob@contoso.test' } }));
  if (weekday === 2) day.push(event('1:1 with Bob', '14:00', '14:30', { organizer: { name: 'Bob Jones', address: 'bob@contoso.test' }, attendees: ['bob@contoso.test'] }));
  if (weekday === 2) day.push(event('Sync with the US team', '18:30', '19:15', { organizer: 'dave@fabrikam.test', attendees: ['dave@fabrikam.test'], isOnlineMeeting: true }));
  if (weekday === 3) day.push(event('Customer call: Fabrikam', '15:00', '16:00', { location: 'Teams', body: 'Renewal and the Q3 invoice.' }));
  if (weekday === 4) day.push(event('Design review', '11:00', '12:00', { location: 'Room 2.01' }), event('Focus time', '16:00', '17:30', { showAs: 'busy' }));
  if (weekday === 5) day.push(event('Release retro', '13:30', '14:15', { location: 'Teams' }));
  if (weekday === 5) day.push(event('All hands', '16:00', '17:00', { organizer: 'ceo@contoso.test', attendees: Array.from({ length: 40 }, (_, i) => `staff${i + 1}@contoso.test`), isOnlineMeeting: true }));
  day.push(event('Lunch', '12:30', '13:15', { showAs: 'free' }));
  return day;
}

/** The zone's UTC offset (`+01:00`) at a local date and time, from Intl. */
function offsetOn(iana: string, ymd: string, hhmm: string): string {
  // The offset at the UTC instant with the same digits is the offset at the local time, except within an
  // hour of a change, where no sample event lies (changes happen at night).
  const probe = new Date(`${ymd}T${hhmm}:00Z`);
  const name = new Intl.DateTimeFormat('en-US', { timeZone: iana, timeZoneName: 'longOffset' }).formatToParts(probe).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /GMT([+-]\d{2}):?(\d{2})?/.exec(name);
  return m ? `${m[1]}:${m[2] ?? '00'}` : 'Z';
}

/** Days (UTC midnights) from `fromDay` up to and including `toDay`. */
export function daysBetween(fromDay: number, toDay: number): number[] {
  const days: number[] = [];
  for (let d = fromDay; d <= toDay; d += 86_400_000) days.push(d);
  return days;
}

export function utcMidnight(ms: number): number {
  return ms - (((ms % 86_400_000) + 86_400_000) % 86_400_000);
}
