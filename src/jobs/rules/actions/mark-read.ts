import { describe, type Segment } from '../../../config/check-helpers.ts';
import { CHANGES_MAIL, planChange, type ActionDefinition, type RuleCheckTools } from '../definition.ts';

/** Checks `markRead`/`flag`: true or false. */
export function checkBoolean(key: 'markRead' | 'flag', raw: unknown, at: Segment[], t: RuleCheckTools): boolean | undefined {
  if (typeof raw === 'boolean') return raw;
  t.add(at, `${key} must be true or false, but it is ${describe(raw)}. Fix: write { ${key}: true }${key === 'markRead' ? ' (false marks unread)' : ' (false clears the flag)'}.`);
  return undefined;
}

/** `markRead: true` (false marks unread). */
export const markRead: ActionDefinition<boolean, boolean> = {
  check: (raw, at, t) => checkBoolean('markRead', raw, at, t),
  plan: planChange('isRead'),
  execution: { kind: 'patch', patch: (value, body) => void (body.isRead = value) },
  onceOnly: false,
  permission: CHANGES_MAIL,
  bareValue: 'true',
  readme: { example: 'markRead: true', text: 'marks read (`false`: unread)' },
};
