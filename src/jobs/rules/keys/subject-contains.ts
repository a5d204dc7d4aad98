import { checkTexts, listOf, verdict, type KeyDefinition } from '../definition.ts';

/** `subjectContains: invoice`: text anywhere in the subject. */
export const subjectContains: KeyDefinition<string | string[]> = {
  check: (raw, at, t) => checkTexts(raw, at, 'subjectContains', t),
  fields: ['subject'],
  test: (value, msg) => {
    const subject = msg.subject.toLowerCase();
    return listOf(value).some((s) => subject.includes(s.toLowerCase()));
  },
  explain: (value, msg, matched) => verdict('subjectContains', value, matched, `'${msg.subject}'`),
  permission: undefined,
  readme: { example: 'subjectContains: invoice', text: 'text anywhere in the subject' },
};
