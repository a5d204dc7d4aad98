import { createRequire } from 'node:module';
import { AgentError } from '../config/errors.ts';
import type { Logger } from '../config/logger.ts';
import { GraphError } from './graph-error.ts';
import type { MailboxSettings } from './mailbox.ts';

/** windows-iana (~9 MB of RSS with its tables) is loaded on first use, not by every process that imports this. */
let windowsIana: typeof import('windows-iana') | undefined;
const zones = () => (windowsIana ??= createRequire(import.meta.url)('windows-iana') as typeof import('windows-iana'));

/**
 * Time zones as Outlook names them. mailboxSettings.timeZone is usually a Windows name
 * ("W. Europe Standard Time"); Intl needs IANA ("Europe/Berlin"). The mapping is CLDR's windowsZones,
 * maintained in the windows-iana package [docs/microsoft-notes.md "Time zones"].
 */
export function toIana(name: string): string {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    const iana = zones().findIana(name)[0];
    if (iana) return iana;
    throw new AgentError('CONFIG_INVALID', `Unknown time zone "${name}".`, {
      remedy: 'Set timezone: in the jobs file to an IANA name such as Europe/Berlin, or fix the mailbox\'s time zone in Outlook settings.',
    });
  }
}

/** The Windows name Graph's `Prefer: outlook.timezone` knows best, or the IANA name when there is none. */
export function toWindows(iana: string): string {
  return zones().findWindows(iana)[0] ?? iana;
}

/** Offset of `zone` from UTC at `ms`, in ms (positive east of Greenwich). */
export function zoneOffset(ms: number, zone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date(ms));
  const n = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  const asUtc = Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second'));
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The local calendar date (YYYY-MM-DD) of `ms` in `zone`. */
export function localDate(ms: number, zone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(ms));
}

/** Start (inclusive) and end (exclusive) instants of the local day containing `ms` in `zone`; DST days are 23 or 25 h. */
export function dayRange(ms: number, zone: string): { date: string; start: Date; end: Date } {
  const date = localDate(ms, zone);
  const midnight = (ymd: string) => {
    const [y, m, d] = ymd.split('-').map(Number) as [number, number, number];
    const guess = Date.UTC(y, m - 1, d);
    const first = guess - zoneOffset(guess, zone);
    return guess - zoneOffset(first, zone);
  };
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const next = new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
  return { date, start: new Date(midnight(date)), end: new Date(midnight(next)) };
}

/** Where a job's local dates are computed: the IANA zone, and the name to send Graph in `Prefer: outlook.timezone`. */
export interface JobZone {
  iana: string;
  outlookName: string;
  source: 'jobs file' | 'mailbox' | 'default';
  /** Why UTC (source `default`), saying how to choose the zone. */
  reason?: string;
}

/**
 * The zone a job's local day is in: the jobs file's `timezone:`, else the mailbox's own (mailboxSettings), else UTC.
 * Graph refuses mailboxSettings with 403 for Outlook.com mailboxes whatever the scopes (docs/microsoft-notes.md
 * "Personal accounts"): then UTC, with a warning that says how to choose the zone, instead of failing the job.
 * Example: `const zone = await jobTimeZone(file.timezone, () => ctx.mailbox.settings(), ctx.log)`.
 */
export async function jobTimeZone(fileZone: string | undefined, readSettings: () => Promise<MailboxSettings>, log: Logger): Promise<JobZone> {
  if (fileZone) {
    const iana = toIana(fileZone);
    return { iana, outlookName: toWindows(iana), source: 'jobs file' };
  }
  let name: string | undefined;
  try {
    name = (await readSettings()).timeZone;
  } catch (error) {
    if (!(error instanceof GraphError) || error.statusCode !== 403) throw error;
    const reason = 'Graph refused the mailbox\'s settings (mailboxSettings, 403; Outlook.com accounts get this), so its time zone is unknown: dates are in UTC. Set timezone: in the jobs file (an IANA name such as Europe/London) to choose.';
    log.warn({ status: error.statusCode }, reason);
    return { iana: 'UTC', outlookName: 'UTC', source: 'default', reason };
  }
  if (!name) return { iana: 'UTC', outlookName: 'UTC', source: 'default', reason: 'The mailbox\'s settings name no time zone, so dates are in UTC. Set timezone: in the jobs file to choose one.' };
  return { iana: toIana(name), outlookName: name, source: 'mailbox' };
}
