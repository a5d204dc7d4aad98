import { checkTexts, listOf, verdict, type KeyDefinition } from '../definition.ts';

/**
 * `subjectMatches` is compiled with these flags: case-insensitive, as every text comparison of the rule
 * engine is. No `u` flag, so patterns such as `\-` that people write by habit stay valid.
 */
export const SUBJECT_MATCHES_FLAGS = 'i';

const regexCache = new Map<string, RegExp>();
function subjectRegex(pattern: string): RegExp {
  let re = regexCache.get(pattern);
  if (!re) {
    re = new RegExp(pattern, SUBJECT_MATCHES_FLAGS);
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(pattern, re);
  }
  return re;
}

/** `subjectMatches: "^Invoice \\d+"`: a JavaScript regular expression, case-insensitive. */
export const subjectMatches: KeyDefinition<string | string[]> = {
  check: (raw, at, t) =>
    checkTexts(raw, at, 'subjectMatches', t, (s, p) => {
      if (/^\/.+\/[a-z]*$/s.test(s)) {
        t.add(p, `${JSON.stringify(s)} is written with slashes, which would be matched literally. Fix: write the pattern alone, e.g. subjectMatches: "${s.replace(/^\/(.*)\/[a-z]*$/s, '$1')}"; matching is already case-insensitive.`);
        return false;
      }
      try {
        new RegExp(s, SUBJECT_MATCHES_FLAGS);
        return true;
      } catch (error) {
        t.add(p, `invalid regular expression (${(error as Error).message}). Fix: correct the pattern (JavaScript syntax; escape ( ) [ ] . * + ? with a backslash to match them literally), or use subjectContains for plain text.`);
        return false;
      }
    }),
  fields: ['subject'],
  test: (value, msg) => listOf(value).some((p) => subjectRegex(p).test(msg.subject)),
  explain: (value, msg, matched) => verdict('subjectMatches', value, matched, `'${msg.subject}'`),
  permission: undefined,
  readme: { example: 'subjectMatches: "^Invoice \\\\d+"', text: 'a JavaScript regular expression on the subject, case-insensitive' },
};
