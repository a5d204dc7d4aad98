import { checkTexts, listOf, lower, verdict, type KeyDefinition } from '../definition.ts';

/** `categories: Finance`: the message has one of these categories. */
export const categories: KeyDefinition<string | string[]> = {
  check: (raw, at, t) => checkTexts(raw, at, 'categories', t),
  fields: ['categories'],
  test: (value, msg) => listOf(value).some((c) => msg.categories.some((m) => lower(m) === lower(c))),
  explain: (value, msg, matched) => verdict('categories', value, matched, `categories ${msg.categories.join(', ') || '(none)'}`),
  permission: undefined,
  readme: { example: 'categories: Finance', text: 'one of the message\'s categories' },
};
