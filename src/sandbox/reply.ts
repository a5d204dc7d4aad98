import type { SandboxContext } from './context.ts';
import { findUser } from './directory.ts';
import { GraphError } from './graph-error.ts';
import type { ExtensionCall } from './graph-route.ts';
import { attachmentsFromRequest } from './attachments.ts';
import { textOf, type Address } from './mailbox-generator.ts';
import type { StoredMessage } from './mailbox-store.ts';

/**
 * `POST …/messages/{id}/reply {comment}` or `{message, comment}` → 202, no body [graph api message-reply]:
 * to the original's replyTo if it has one, else its sender (plus any toRecipients/ccRecipients in `message`);
 * `comment` and `message.body` together are refused with 400. The reply ("RE: …", In-Reply-To and
 * References set) is saved in Sent Items and lands in the inbox of a recipient who is a sandbox user.
 */
export function reply(ctx: SandboxContext, call: ExtensionCall, m: StoredMessage): undefined {
  const b = (call.body ?? {}) as { comment?: unknown; message?: Record<string, unknown> };
  if (typeof b !== 'object' || Array.isArray(b)) throw new GraphError(400, 'BadRequest', 'Unable to read JSON request payload.');
  const msg = b.message && typeof b.message === 'object' ? b.message : undefined;
  const body = msg?.body as { contentType?: unknown; content?: unknown } | undefined;
  if (typeof b.comment === 'string' && body?.content !== undefined) {
    throw new GraphError(400, 'ErrorInvalidRequest', 'Specify either a comment or the body property of the message parameter, not both.');
  }
  const to = [...(m.replyTo?.length ? m.replyTo : [m.from]), ...addresses(msg?.toRecipients)];
  const cc = addresses(msg?.ccRecipients);
  if ([...to, ...cc].some((a) => !/^[^@\s]+@[^@\s]+$/.test(a.address))) {
    throw new GraphError(400, 'ErrorInvalidRecipients', 'At least one recipient is not valid., A message can\'t be sent because it contains no recipients.');
  }
  const html = m.bodyContentType === 'html';
  const own = body?.content !== undefined ? String(body.content) : typeof b.comment === 'string' ? b.comment : '';
  const quoted = [`From: ${m.from.name} <${m.from.address}>`, `Sent: ${m.sentDateTime}`, `To: ${m.to.map((a) => a.address).join('; ')}`, `Subject: ${m.subject}`];
  const content = html
    ? `<html><body><div>${own}</div><hr><div>${quoted.map(escapeHtml).join('<br>')}</div>${m.body.replace(/^[\s\S]*<body[^>]*>|<\/body>[\s\S]*$/gi, '')}</body></html>`
    : `${own}\n\n________________________________\n${quoted.join('\n')}\n\n${textOf(m.bodyContentType, m.body)}`;
  const references = [...(m.internetMessageHeaders?.find((h) => h.name.toLowerCase() === 'references')?.value.split(/\s+/) ?? []), m.internetMessageId].filter(Boolean);
  const me: Address = { name: call.target.displayName, address: call.target.upn };
  const base = {
    subject: /^re:\s/i.test(m.subject) ? m.subject : `RE: ${m.subject}`, bodyContentType: m.bodyContentType, body: content, from: me, to, cc,
    receivedDateTime: call.nowIso, sentDateTime: call.nowIso, importance: m.importance, hasAttachments: false, categories: [],
    flagStatus: 'notFlagged' as const, attachments: attachmentsFromRequest(msg?.attachments),
    internetMessageHeaders: [{ name: 'In-Reply-To', value: m.internetMessageId }, { name: 'References', value: references.join(' ') }],
  };
  call.box.addMessage({ ...base, isRead: true }, call.box.folder('sentitems')!.id, call.nowIso);
  for (const a of [...to, ...cc]) {
    const rcpt = findUser(a.address);
    const box = rcpt && ctx.state.mailbox(rcpt.upn);
    if (box) box.addMessage({ ...base, isRead: false }, box.folder('inbox')!.id, call.nowIso);
  }
  call.res.status(202);
  return undefined;
}

function addresses(list: unknown): Address[] {
  if (!Array.isArray(list)) return [];
  return list.map((r) => {
    const e = (r as { emailAddress?: { address?: unknown; name?: unknown } }).emailAddress;
    return { address: String(e?.address ?? ''), name: String(e?.name ?? e?.address ?? '') };
  });
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
