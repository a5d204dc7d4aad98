import type { Segment } from '../../../config/check-helpers.ts';
import { describe } from '../../../config/check-helpers.ts';
import { type KeyDefinition, type RuleCheckTools } from '../definition.ts';
import type { MessageView } from '../message.ts';

/** `hasAttachments` and `isRead`: one definition, a true/false property of the message. */
function booleanKey(key: 'hasAttachments' | 'isRead', field: string, yes: string, no: string): KeyDefinition<boolean> {
  const check = (raw: unknown, at: Segment[], t: RuleCheckTools) => {
    if (typeof raw === 'boolean') return raw;
    t.add(at, `${key} must be true or false, but it is ${describe(raw)}. Fix: write ${key}: true or ${key}: false.`);
    return undefined;
  };
  const read = (msg: MessageView) => msg[key];
  return {
    check,
    fields: [field],
    test: (value, msg) => read(msg) === value,
    explain: (value, msg, matched) => `${key} ${value} ${matched ? 'matched' : 'did not match'} (${read(msg) ? yes : no})`,
    permission: undefined,
    readme: { example: `${key}: true`, text: `true or false (${yes})` },
  };
}

export const hasAttachments = booleanKey('hasAttachments', 'hasAttachments', 'the message has attachments', 'the message has no attachments');
export const isRead = booleanKey('isRead', 'isRead', 'the message is read', 'the message is unread');
