import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { describe } from '../../../config/check-helpers.ts';
import { GraphError } from '../../../graph/graph-error.ts';
import type { GraphMessage } from '../../../graph/mailbox.ts';
import { checkMapping, type ActionDefinition, type CallResult } from '../definition.ts';
import { ownAddress } from '../own-address.ts';

export interface ReplySpec {
  /** The template's text, or (`file`) the absolute path of the file that holds it. */
  template: string;
  file: boolean;
  /** Text templates are escaped and their line breaks kept; .html files are HTML. */
  html: boolean;
  oncePerSenderDays: number;
}

const DAY_MS = 24 * 3600_000;
const PLACEHOLDERS = ['sender.name', 'sender.address', 'subject', 'receivedDateTime'];
/** Senders no person reads: never answered. */
const NO_REPLY = /^(no-?reply|do-?not-?reply|donotreply|mailer-daemon|postmaster|bounces?)([+.-].*)?@/i;

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The template with every placeholder replaced by the message's value, escaped for HTML. */
export function renderReply(spec: Pick<ReplySpec, 'html'>, template: string, m: { name: string; address: string; subject: string; receivedDateTime: string }): string {
  const values: Record<string, string> = { 'sender.name': m.name, 'sender.address': m.address, subject: m.subject, receivedDateTime: m.receivedDateTime };
  const body = spec.html ? template : escapeHtml(template).replace(/\r?\n/g, '<br>\n');
  return body.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (whole, key: string) => (key in values ? escapeHtml(values[key]!) : whole));
}

const queues = new Map<string, Promise<unknown>>();
/** Runs `work` after every earlier work of the same key has ended (within this process; runs of a job never overlap). */
function oneAtATime<T>(key: string, work: () => Promise<T>): Promise<T> {
  const result = (queues.get(key) ?? Promise.resolve()).then(work, work);
  const tail = result.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return result;
}

const looksLikeFile = (s: string) => !/\s/.test(s.trim()) && /\.(html?|txt|md)$/i.test(s.trim());

/**
 * `reply: { template: "Thanks, {{sender.name}}!", oncePerSenderDays: 7 }` (or a file): a templated reply. Never
 * to the person's own address, never to noreply/mailer-daemon addresses or list and automatic mail (List-Id,
 * Auto-Submitted), at most once per sender per window; once per message, ever.
 */
export const reply: ActionDefinition<ReplySpec, ReplySpec> = {
  check: (raw, at, t) => {
    const example = 'e.g. { reply: { template: "Thanks, {{sender.name}}, I am away until Monday.", oncePerSenderDays: 7 } }';
    const spec = checkMapping(raw, at, t, 'reply', ['template', 'oncePerSenderDays'], 'template: (text or a file) and oncePerSenderDays:', example);
    if (!spec) return undefined;
    if (typeof spec.template !== 'string' || spec.template.trim() === '') {
      t.add(spec.template === undefined ? at : [...at, 'template'], `reply needs template: the reply's text (with ${PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')}) or the path of a .html or .txt file, but it is ${describe(spec.template)}. Fix: ${example}.`);
      return undefined;
    }
    const days = spec.oncePerSenderDays ?? 7;
    if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > 365) {
      t.add([...at, 'oncePerSenderDays'], `oncePerSenderDays must be a whole number of days from 1 to 365, but it is ${describe(days)}. Fix: e.g. oncePerSenderDays: 7 (a sender gets at most one reply a week).`);
      return undefined;
    }
    const file = looksLikeFile(spec.template);
    const template = file ? t.resolvePath(spec.template.trim()) : spec.template;
    const text = file ? (existsSync(template) ? readFileSync(template, 'utf8') : undefined) : template;
    if (text === undefined) {
      t.add([...at, 'template'], `the template file ${template} does not exist. Fix: write its path relative to the jobs file's folder, or write the reply's text itself.`);
      return undefined;
    }
    const unknownPlaceholder = [...text.matchAll(/\{\{\s*([\w.]+)\s*\}\}/g)].map((m) => m[1]!).find((p) => !PLACEHOLDERS.includes(p));
    if (unknownPlaceholder) {
      t.add([...at, 'template'], `unknown placeholder {{${unknownPlaceholder}}} in the reply template. Fix: use ${PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')}.`);
      return undefined;
    }
    return { template, file, html: file && /\.html?$/i.test(template), oncePerSenderDays: days };
  },
  plan: (value, state) => (state.first('reply', '') ? value : undefined),
  execution: {
    kind: 'call',
    async run(ctx, message, step) {
      const spec = step.value;
      const m = (await ctx.graph.get<GraphMessage & { internetMessageHeaders?: { name: string; value: string }[] }>(
        ctx.mailbox.path(`/messages/${encodeURIComponent(message.id)}?$select=from,replyTo,subject,receivedDateTime,internetMessageHeaders`), { signal: ctx.signal })).body;
      const sender = (m.from as { emailAddress?: { name?: string; address?: string } } | undefined)?.emailAddress ?? {};
      const address = (sender.address ?? '').trim();
      const to = [address, ...((m.replyTo as { emailAddress?: { address?: string } }[] | undefined) ?? []).map((r) => r.emailAddress?.address ?? '')].filter(Boolean).map((a) => a.toLowerCase());
      if (to.length === 0) return { skipped: 'the message has no sender address to reply to' };
      if (to.includes(await ownAddress(ctx))) return { skipped: 'never a reply to your own address' };
      const robot = to.find((a) => NO_REPLY.test(a));
      if (robot) return { skipped: `never a reply to ${robot} (an address nobody reads)` };
      const header = (name: string) => (m.internetMessageHeaders ?? []).find((h) => h.name.toLowerCase() === name.toLowerCase())?.value;
      if (header('List-Id')) return { skipped: 'never a reply to list mail (List-Id header)' };
      const auto = header('Auto-Submitted');
      if (auto && auto.trim().toLowerCase() !== 'no') return { skipped: `never a reply to automatic mail (Auto-Submitted: ${auto})` };
      const template = spec.file ? await readFile(spec.template, 'utf8') : spec.template;
      const html = renderReply(spec, template, { name: sender.name ?? address, address, subject: typeof m.subject === 'string' ? m.subject : '', receivedDateTime: String(m.receivedDateTime ?? '') });
      const windowKey = `replied:${address.toLowerCase()}`;
      // Two messages of one sender on a page run side by side: the window is read and taken one at a time.
      return oneAtATime(`${ctx.job}\0${windowKey}`, async (): Promise<CallResult> => {
        const last = await ctx.store.get<number>(windowKey);
        const windowMs = spec.oncePerSenderDays * DAY_MS;
        if (last !== undefined && ctx.runStart.getTime() - last < windowMs) {
          return { skipped: `${address} already got a reply on ${new Date(last).toISOString()}; at most one per ${spec.oncePerSenderDays} day(s)` };
        }
        // The window is taken before sending: a crash after the send can never make a second reply to this sender.
        await ctx.store.set(windowKey, ctx.runStart.getTime(), windowMs);
        try {
          await ctx.mailbox.reply(message.id, html);
        } catch (error) {
          // Certainly not sent (throttled, refused): the sender has not had this reply, so the window is given back.
          if (error instanceof GraphError && error.executed === false) {
            if (last === undefined) await ctx.store.delete(windowKey);
            else await ctx.store.set(windowKey, last, windowMs);
          }
          throw error;
        }
      });
    },
  },
  onceOnly: true,
  permission: { permission: 'Mail.Send', why: 'replies to mail' },
  bareValue: '…',
  readme: {
    example: 'reply: { template: "Thanks {{sender.name}}, I read mail on Mondays.", oncePerSenderDays: 7 }',
    text: 'a templated reply (text, or a .html/.txt file relative to the jobs file) with `{{sender.name}}`, `{{sender.address}}`, `{{subject}}`, `{{receivedDateTime}}`, each escaped for HTML; never to your own address, to noreply or mailer-daemon addresses or to list or automatic mail (List-Id, Auto-Submitted); at most once per sender in `oncePerSenderDays` (default 7) and once per message ever',
  },
};
