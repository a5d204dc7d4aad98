/**
 * The README's rule reference, rendered from the registries, so it lists every match key and action with
 * its example (test/jobs/rules-registry.test.ts keeps README.md equal to it). Regenerate the README part with
 * `node --import tsx src/jobs/rules/reference.ts --write`.
 */
import { ACTION_NAMES, ACTIONS } from './actions/index.ts';
import { KEY_NAMES, MATCH_KEYS } from './keys/index.ts';
import type { ReadmeEntry } from './definition.ts';

export const REFERENCE_START = '<!-- rule-reference:start (generated from src/jobs/rules/; edit the definitions) -->';
export const REFERENCE_END = '<!-- rule-reference:end -->';

const line = (e: ReadmeEntry, permission?: string) => `- \`${e.example}\`: ${e.text}${permission ? `; needs ${permission}` : ''}.`;

/** The markdown between REFERENCE_START and REFERENCE_END. */
export function renderRuleReference(): string {
  return [
    '**Match keys** (all given must hold; `any: [ {…}, {…} ]` for "or"; text comparisons are case-insensitive; a list means "any of"):',
    '',
    ...KEY_NAMES.map((k) => line(MATCH_KEYS[k].readme, MATCH_KEYS[k].permission?.permission)),
    '- `any: [ { from: boss@example.com }, { subjectContains: urgent } ]`: at least one of the sub-matches holds.',
    '',
    '**Actions** (each a mapping with one key, in a list):',
    '',
    ...ACTION_NAMES.map((a) => line(ACTIONS[a].readme, ACTIONS[a].permission?.permission)),
  ].join('\n');
}

/** README.md's text with the reference replaced by a fresh rendering. */
export function withReference(readme: string): string {
  const start = readme.indexOf(REFERENCE_START);
  const end = readme.indexOf(REFERENCE_END);
  if (start < 0 || end < start) throw new Error(`README.md has no rule reference markers (${REFERENCE_START} … ${REFERENCE_END}).`);
  return `${readme.slice(0, start + REFERENCE_START.length)}\n${renderRuleReference()}\n${readme.slice(end)}`;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/src\//, '/src/')) && process.argv.includes('--write')) {
  const { readFile, writeFile } = await import('node:fs/promises');
  const path = new URL('../../../README.md', import.meta.url);
  await writeFile(path, withReference(await readFile(path, 'utf8')));
}
