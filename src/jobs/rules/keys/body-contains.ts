import { checkTexts, listOf, verdict, type KeyDefinition } from '../definition.ts';
import { normalizeSpace } from '../message.ts';

/** `bodyContains: "unsubscribe"`: the whole body, HTML stripped, whitespace and case ignored. */
export const bodyContains: KeyDefinition<string | string[]> = {
  check: (raw, at, t) => checkTexts(raw, at, 'bodyContains', t),
  fields: ['body'],
  test: (value, msg) => {
    if (msg.bodyText === undefined) {
      throw new Error(`Rule engine: bodyContains needs the message body, but message ${msg.id} was fetched without it. Fetch body whenever needsBody(rules) is true.`);
    }
    const body = normalizeSpace(msg.bodyText).toLowerCase();
    return listOf(value).some((s) => body.includes(normalizeSpace(s).toLowerCase()));
  },
  explain: (value, _msg, matched) => verdict('bodyContains', value, matched, 'the body'),
  permission: undefined,
  readme: { example: 'bodyContains: unsubscribe', text: 'text in the whole body (HTML tags stripped, not the preview)' },
};
