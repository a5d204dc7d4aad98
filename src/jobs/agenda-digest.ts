import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AgendaDigestJob } from '../config/jobs-file.ts';
import { AgentError, describeError } from '../config/errors.ts';
import { GraphError } from '../graph/graph-error.ts';
import { mayHaveRun, networkFailure } from '../graph/retry-policy.ts';
import type { CalendarEvent } from '../graph/mailbox.ts';
import { dayRange, jobTimeZone } from '../graph/timezone.ts';
import type { JobContext } from './context.ts';

/** Where a digest goes, from `sendTo`. */
export type DigestTarget =
  | { kind: 'self' }
  | { kind: 'address'; address: string }
  | { kind: 'webhook'; url: string }
  | { kind: 'file'; path: string };

export function digestTarget(sendTo: string, baseDir: string): DigestTarget {
  const value = sendTo.trim();
  if (value.toLowerCase() === 'me') return { kind: 'self' };
  if (/^https?:\/\//i.test(value)) return { kind: 'webhook', url: value };
  if (/^[^@\s/\\]+@[^@\s/\\]+\.[^@\s/\\]+$/.test(value)) return { kind: 'address', address: value };
  return { kind: 'file', path: path.resolve(baseDir, value) };
}

/**
 * Today's events (calendarView over the local day in the jobs file's `timezone:`, else the mailbox's own from
 * mailboxSettings, else UTC when Graph refuses mailboxSettings: see jobTimeZone), rendered as HTML with every field escaped, then mailed to self
 * (`sendTo: me`) or an address with sendMail, written to a file, or POSTed to a webhook.
 */
export async function runAgendaDigest(ctx: JobContext, job: AgendaDigestJob, options: { timezone?: string; baseDir: string }): Promise<void> {
  const target = digestTarget(job.sendTo, options.baseDir);
  const { iana, outlookName } = await jobTimeZone(options.timezone, () => ctx.mailbox.settings(), ctx.log);
  const day = dayRange(ctx.runStart.getTime(), iana);
  const events = (await ctx.mailbox.events(day.start, day.end, { timeZone: outlookName, signal: ctx.signal })).filter((e) => !e.isCancelled);
  ctx.report.examined = events.length;
  const subject = `Agenda for ${day.date}: ${events.length === 0 ? 'nothing scheduled' : `${events.length} event${events.length === 1 ? '' : 's'}`}`;
  const html = renderDigest({ date: day.date, timeZone: iana, events });
  const record = { messageId: '', rule: job.name, action: 'sendDigest', value: job.sendTo, subject };
  if (ctx.dryRun) {
    ctx.report.actions.push({ ...record, result: 'planned' });
    return;
  }
  try {
    switch (target.kind) {
      case 'self':
        await ctx.mailbox.sendMail({ to: [await ctx.mailbox.address()], subject, html });
        break;
      case 'address':
        await ctx.mailbox.sendMail({ to: [target.address], subject, html });
        break;
      case 'file':
        await mkdir(path.dirname(target.path), { recursive: true });
        await writeFile(target.path, html, 'utf8');
        break;
      case 'webhook':
        await postDigest(ctx, target.url, { job: ctx.job, date: day.date, timeZone: iana, subject, html, events: events.map(summary) });
        break;
    }
  } catch (error) {
    // sendMail and a webhook must not deliver the digest twice: an answer lost after sending (500, 502, 504,
    // a reset, a timeout) is reported 'unsure' and not repeated; the client already re-sent what provably
    // did not run (429, 503).
    const executed = error instanceof GraphError || error instanceof DigestWebhookError ? error.executed : false;
    if (executed !== false) {
      ctx.report.actions.push({ ...record, result: 'unsure', error: `${(error as Error).message} The answer was lost after the digest was sent, so it may or may not have arrived; it is not sent again, so it never arrives twice. Look in Sent Items (or the webhook's log).` });
      ctx.log.warn({ err: error }, 'the digest may or may not have been delivered; not sent again');
      return;
    }
    ctx.report.actions.push({ ...record, result: 'failed', error: describeError(error) });
    throw error;
  }
  ctx.report.actions.push({ ...record, result: 'done' });
}

/** A digest webhook that failed, and whether it may have received the digest (retry-policy.ts `mayHaveRun`). */
class DigestWebhookError extends AgentError {
  constructor(message: string, readonly executed: boolean | 'unknown', cause?: unknown) {
    super('GRAPH_ERROR', message, { remedy: 'Check the webhook URL in sendTo; the next scheduled run tries again.', cause });
  }
}

async function postDigest(ctx: JobContext, url: string, payload: unknown): Promise<void> {
  let response: Response;
  try {
    response = await ctx.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload),
      signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(15_000)]),
    });
  } catch (cause) {
    if (ctx.signal.aborted) throw cause;
    throw new DigestWebhookError(`The digest webhook ${url} gave no answer (${(cause as Error).message}).`, mayHaveRun(networkFailure(cause)), cause);
  }
  await response.body?.cancel();
  if (!response.ok) throw new DigestWebhookError(`The digest webhook ${url} answered HTTP ${response.status}.`, mayHaveRun({ kind: 'status', status: response.status }));
}

function summary(e: CalendarEvent) {
  return {
    id: e.id, subject: e.subject ?? '', start: e.start, end: e.end, isAllDay: e.isAllDay === true,
    location: e.location?.displayName ?? '', organizer: e.organizer?.emailAddress?.address ?? '',
  };
}

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The digest's HTML: a table of today's events; every value from Graph is escaped. */
export function renderDigest(input: { date: string; timeZone: string; events: CalendarEvent[] }): string {
  const time = (e: CalendarEvent) => (e.isAllDay ? 'all day' : `${e.start.dateTime.slice(11, 16)}–${e.end.dateTime.slice(11, 16)}`);
  const rows = input.events.map((e) => `<tr><td style="padding:4px 12px 4px 0;white-space:nowrap">${escapeHtml(time(e))}</td>`
    + `<td style="padding:4px 12px 4px 0"><strong>${escapeHtml(e.subject || '(no subject)')}</strong>`
    + `${e.location?.displayName ? `<br><span style="color:#555">${escapeHtml(e.location.displayName)}</span>` : ''}</td>`
    + `<td style="padding:4px 0;color:#555">${escapeHtml(e.organizer?.emailAddress?.name ?? e.organizer?.emailAddress?.address ?? '')}</td></tr>`);
  return `<!doctype html><html><head><meta charset="utf-8"><title>Agenda for ${escapeHtml(input.date)}</title></head>`
    + `<body style="font-family:system-ui,sans-serif"><h1 style="font-size:18px">Agenda for ${escapeHtml(input.date)}</h1>`
    + `<p style="color:#555">Times in ${escapeHtml(input.timeZone)}.</p>`
    + (rows.length ? `<table>${rows.join('')}</table>` : '<p>Nothing scheduled today.</p>')
    + '</body></html>';
}
