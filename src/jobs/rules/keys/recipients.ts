import { isAddress, type Segment } from '../../../config/check-helpers.ts';
import { checkTexts, listOf, lower, verdict, type KeyDefinition, type RuleCheckTools } from '../definition.ts';
import type { MessageView } from '../message.ts';

/** `to` and `cc` are one definition with two fields: a recipient list compared with whole addresses. */
function recipientKey(key: 'to' | 'cc', field: 'toRecipients' | 'ccRecipients', label: string): KeyDefinition<string | string[]> {
  const check = (raw: unknown, at: Segment[], t: RuleCheckTools) =>
    checkTexts(raw, at, key, t, (s, p) => {
      if (isAddress(s.trim())) return true;
      t.add(p, `${key} compares whole recipient addresses, and ${JSON.stringify(s)} is not an email address. Fix: write e.g. ${key}: team@example.com.`);
      return false;
    });
  const list = (msg: MessageView) => msg[field];
  return {
    check,
    fields: [field],
    test: (value, msg) => listOf(value).some((a) => list(msg).some((r) => lower(r) === lower(a))),
    explain: (value, msg, matched) => verdict(key, value, matched, `${label} ${list(msg).join(', ') || '(nobody)'}`),
    permission: undefined,
    readme: { example: `${key}: team@example.com`, text: `an address among the ${label} recipients` },
  };
}

export const to = recipientKey('to', 'toRecipients', 'To');
export const cc = recipientKey('cc', 'ccRecipients', 'Cc');
