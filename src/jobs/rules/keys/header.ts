import { describe } from '../../../config/check-helpers.ts';
import { checkMapping, listOf, type KeyDefinition } from '../definition.ts';
import type { MessageView } from '../message.ts';
import { SUBJECT_MATCHES_FLAGS } from './subject-matches.ts';

export type HeaderMatch = { name: string; contains: string | string[] } | { name: string; matches: string | string[] };

/** RFC 5322 field names: printable ASCII but space and colon. */
const FIELD_NAME = /^[!-9;-~]+$/;

function headersOf(msg: MessageView): { name: string; value: string }[] {
  if (msg.headers === undefined) {
    throw new Error(`Rule engine: header needs the message's internetMessageHeaders, but message ${msg.id} was fetched without them. Fetch them for every candidate of a rule that uses header.`);
  }
  return msg.headers;
}

function valuesOf(value: HeaderMatch, msg: MessageView): string[] {
  const name = value.name.toLowerCase();
  return headersOf(msg).filter((h) => h.name.toLowerCase() === name).map((h) => h.value);
}

/**
 * `header: { name: List-Id, contains: news }` (or `matches:` a regular expression): any internet message header
 * of that name (case-insensitive). Headers are not in delta: they are fetched for the messages the rule's other
 * keys leave as candidates, 20 per $batch (docs/microsoft-notes.md "Headers, attachments, contacts").
 */
export const header: KeyDefinition<HeaderMatch> = {
  check: (raw, at, t) => {
    const example = 'e.g. header: { name: List-Id, contains: news.example.com }';
    const spec = checkMapping(raw, at, t, 'header', ['name', 'contains', 'matches'], 'name: and one of contains: or matches:', example);
    if (!spec) return undefined;
    if (typeof spec.name !== 'string' || !FIELD_NAME.test(spec.name.trim())) {
      t.add(spec.name === undefined ? at : [...at, 'name'], `header needs name: the header's field name (such as List-Id or X-Mailer), but it is ${describe(spec.name)}. Fix: ${example}.`);
      return undefined;
    }
    if ((spec.contains === undefined) === (spec.matches === undefined)) {
      t.add(at, `header needs exactly one of contains: (text) or matches: (a regular expression). Fix: ${example}, or header: { name: ${spec.name}, matches: "^<news\\\\." }.`);
      return undefined;
    }
    const name = spec.name.trim();
    if (spec.contains !== undefined) {
      const list = t.textList(spec.contains, [...at, 'contains'], 'header contains');
      return list && { name, contains: spec.contains as string | string[] };
    }
    const list = t.textList(spec.matches, [...at, 'matches'], 'header matches');
    if (!list) return undefined;
    for (const [i, pattern] of list.entries()) {
      try {
        new RegExp(pattern, SUBJECT_MATCHES_FLAGS);
      } catch (error) {
        t.add(Array.isArray(spec.matches) ? [...at, 'matches', i] : [...at, 'matches'], `invalid regular expression (${(error as Error).message}). Fix: correct the pattern (JavaScript syntax), or use contains: for plain text.`);
        return undefined;
      }
    }
    return { name, matches: spec.matches as string | string[] };
  },
  fields: [],
  fetch: 'headers',
  test: (value, msg) => {
    const values = valuesOf(value, msg);
    if ('contains' in value) return listOf(value.contains).some((s) => values.some((v) => v.toLowerCase().includes(s.toLowerCase())));
    return listOf(value.matches).some((p) => values.some((v) => new RegExp(p, SUBJECT_MATCHES_FLAGS).test(v)));
  },
  explain: (value, msg, matched) => {
    const values = valuesOf(value, msg);
    const how = 'contains' in value ? `contains ${listOf(value.contains).join(', ')}` : `matches ${listOf(value.matches).join(', ')}`;
    const seen = values.length === 0 ? `(no ${value.name} header)` : `${value.name}: ${values.join(' | ')}`;
    return `header ${value.name} ${how} ${matched ? 'matched' : 'did not match'} ${seen}`;
  },
  permission: undefined,
  readme: { example: 'header: { name: List-Id, contains: news.example.com }', text: 'any internet message header by name, with `contains:` text or `matches:` a regular expression (fetched only for messages the other keys leave, 20 per request)' },
};
