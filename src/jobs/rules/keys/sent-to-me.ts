import { describe, suggest } from '../../../config/check-helpers.ts';
import type { KeyDefinition } from '../definition.ts';
import type { MessageView } from '../message.ts';

export type SentToMe = 'only' | 'direct' | 'cc';
const VALUES: readonly SentToMe[] = ['only', 'direct', 'cc'];

function how(msg: MessageView, me: string | undefined): { to: boolean; cc: boolean; others: number } {
  if (!me) throw new Error(`Rule engine: sentToMe needs the mailbox's own address, but it was not loaded for message ${msg.id}. Load it when a rule uses sentToMe.`);
  const is = (a: string) => a.trim().toLowerCase() === me;
  const all = [...msg.toRecipients, ...msg.ccRecipients];
  return { to: msg.toRecipients.some(is), cc: msg.ccRecipients.some(is), others: all.filter((a) => !is(a)).length };
}

/** `sentToMe: only` (you are the only recipient), `direct` (you are in To), `cc` (you are in Cc, not in To). */
export const sentToMe: KeyDefinition<SentToMe> = {
  check: (raw, at, t) => {
    if (typeof raw === 'string' && (VALUES as readonly string[]).includes(raw)) return raw as SentToMe;
    const hint = typeof raw === 'string' ? suggest(raw, VALUES) : undefined;
    t.add(at, `sentToMe must be only, direct or cc, but it is ${describe(raw)}. Fix: ${hint ? `did you mean "${hint}"? ` : ''}only: you are the one recipient; direct: you are in To; cc: you are in Cc only.`);
    return undefined;
  },
  fields: ['toRecipients', 'ccRecipients'],
  env: 'me',
  test: (value, msg, env) => {
    const h = how(msg, env.me);
    if (value === 'only') return (h.to || h.cc) && h.others === 0;
    if (value === 'direct') return h.to;
    return h.cc && !h.to;
  },
  explain: (value, msg, matched, env) => {
    const h = how(msg, env.me);
    const where = h.to ? 'you are in To' : h.cc ? 'you are in Cc' : 'you are not a recipient (Bcc or a list)';
    return `sentToMe ${value} ${matched ? 'matched' : 'did not match'} (${where}, ${h.others} other recipient${h.others === 1 ? '' : 's'})`;
  },
  permission: undefined,
  readme: { example: 'sentToMe: only', text: '`only` (you are the one recipient), `direct` (you are in To) or `cc` (in Cc, not in To)' },
};
