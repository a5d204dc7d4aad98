import { CHANGES_MAIL, planChange, type ActionDefinition } from '../definition.ts';
import { checkBoolean } from './mark-read.ts';

/** `flag: true` (false clears the flag). */
export const flag: ActionDefinition<boolean, boolean> = {
  check: (raw, at, t) => checkBoolean('flag', raw, at, t),
  plan: planChange('flagged'),
  execution: { kind: 'patch', patch: (value, body) => void (body.flag = { flagStatus: value ? 'flagged' : 'notFlagged' }) },
  onceOnly: false,
  permission: CHANGES_MAIL,
  bareValue: 'true',
  readme: { example: 'flag: true', text: 'flags the message (`false` clears the flag)' },
};
