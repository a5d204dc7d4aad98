import { describe, suggest } from '../../../config/check-helpers.ts';
import { listOf, verdict, type KeyDefinition } from '../definition.ts';

export type Importance = 'low' | 'normal' | 'high';
export const IMPORTANCE: readonly Importance[] = ['low', 'normal', 'high'];

/** `importance: high` (or a list). */
export const importance: KeyDefinition<Importance | Importance[]> = {
  check: (raw, at, t) => {
    const list = listOf(raw);
    const bad = list.filter((x) => !(IMPORTANCE as readonly unknown[]).includes(x));
    if (list.length > 0 && bad.length === 0) return raw as Importance | Importance[];
    const hint = typeof bad[0] === 'string' ? suggest(bad[0], IMPORTANCE) : undefined;
    t.add(at, `importance must be low, normal or high (or a list of them), but it is ${describe(list.length === 0 ? raw : bad[0])}. Fix: ${hint ? `did you mean "${hint}"? ` : ''}e.g. importance: high.`);
    return undefined;
  },
  fields: ['importance'],
  test: (value, msg) => listOf(value).includes(msg.importance),
  explain: (value, msg, matched) => verdict('importance', value, matched, `importance ${msg.importance}`),
  permission: undefined,
  readme: { example: 'importance: high', text: '`low`, `normal` or `high`' },
};
