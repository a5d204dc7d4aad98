import { isAddress } from '../../../config/check-helpers.ts';
import { checkTexts, listOf, lower, verdict, type KeyDefinition } from '../definition.ts';

/** `from: alice@example.com`: the whole sender address. */
export const from: KeyDefinition<string | string[]> = {
  check: (raw, at, t) =>
    checkTexts(raw, at, 'from', t, (s, p) => {
      if (s.startsWith('@') || (!s.includes('@') && s.includes('.'))) {
        t.add(p, `from compares the whole address, and ${JSON.stringify(s)} is not one. Fix: to match a domain write fromDomain: ${s.replace(/^@/, '')}.`);
        return false;
      }
      if (!isAddress(s.trim())) {
        t.add(p, `from compares the whole sender address, and ${JSON.stringify(s)} is not an email address. Fix: write e.g. from: alice@example.com, or use subjectContains / fromDomain.`);
        return false;
      }
      return true;
    }),
  fields: ['from'],
  test: (value, msg) => msg.from !== undefined && listOf(value).some((a) => lower(msg.from!) === lower(a)),
  explain: (value, msg, matched) => verdict('from', value, matched, `sender ${msg.from ?? '(none)'}`),
  permission: undefined,
  readme: { example: 'from: alice@example.com', text: 'the sender\'s whole address' },
};
