import { describe, suggest } from '../../../config/check-helpers.ts';
import { CHANGES_MAIL, planChange, type ActionDefinition } from '../definition.ts';
import { IMPORTANCE, type Importance } from '../keys/importance.ts';

/** `setImportance: high`. */
export const setImportance: ActionDefinition<Importance, Importance> = {
  check: (raw, at, t) => {
    if (typeof raw === 'string' && (IMPORTANCE as readonly string[]).includes(raw)) return raw as Importance;
    const hint = typeof raw === 'string' ? suggest(raw, IMPORTANCE) : undefined;
    t.add(at, `setImportance must be low, normal or high, but it is ${describe(raw)}. Fix: ${hint ? `did you mean "${hint}"? ` : ''}e.g. { setImportance: high }.`);
    return undefined;
  },
  plan: planChange('importance'),
  execution: { kind: 'patch', patch: (value, body) => void (body.importance = value) },
  onceOnly: false,
  permission: CHANGES_MAIL,
  bareValue: '…',
  readme: { example: 'setImportance: high', text: '`low`, `normal` or `high`' },
};
