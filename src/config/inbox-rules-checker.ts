/**
 * The rules of an inbox-rules job in the jobs file: the shape of a rule, of match: and of actions:, checked
 * here; each match key's and each action's own value is checked by its definition (src/jobs/rules/keys/,
 * src/jobs/rules/actions/), which reports through the same tools.
 */
import { ACTION_NAMES, ACTIONS, type Action, type ActionName } from '../jobs/rules/actions/index.ts';
import { KEY_NAMES, MATCH_KEYS, type MatchSpec } from '../jobs/rules/keys/index.ts';
import type { CheckTools } from './calendar-rules-schema.ts';
import { describe, isObject, suggest, type Obj, type Segment } from './check-helpers.ts';
import { README } from './jobs-file-error.ts';
import type { Locate } from './jobs-file-parse.ts';
import type { Rule } from './jobs-file.ts';

export type RuleTools = CheckTools & { locate: Locate; resolvePath(p: string): string; timezone: string | undefined };

const RULE_KEYS = ['name', 'match', 'actions', 'stop'];
const MATCH_KEY_NAMES: readonly string[] = [...KEY_NAMES, 'any'];
/** A few of Graph's well-known folder names, for hints only. */
const WELL_KNOWN_FOLDERS = ['archive', 'inbox', 'junkemail', 'deleteditems', 'drafts', 'sentitems'];

const isAction = (key: string): key is ActionName => (ACTION_NAMES as readonly string[]).includes(key);

/** The `rules:` of an inbox-rules job `raw` at `at`, or undefined after reporting every problem. */
export function checkInboxRules(raw: Obj, at: Segment[], t: RuleTools): Rule[] | undefined {
  if (raw.rules === undefined) {
    t.add(at, `an inbox-rules job needs rules:. Fix: add a list of rules, each with name:, match: and actions: (see ${README}).`);
    return undefined;
  }
  if (!Array.isArray(raw.rules) || raw.rules.length === 0) {
    t.add([...at, 'rules'], `rules must be a non-empty list, but it is ${describe(raw.rules)}${Array.isArray(raw.rules) ? ' that is empty' : ''}. Fix: add at least one rule with name:, match: and actions:.`);
    return undefined;
  }
  const rules: Rule[] = [];
  const firstIndex = new Map<string, number>();
  let ok = true;
  raw.rules.forEach((r, index) => {
    const ruleAt = [...at, 'rules', index];
    const rule = checkRule(r, ruleAt, t);
    if (isObject(r) && typeof r.name === 'string') {
      const first = firstIndex.get(r.name);
      if (first === undefined) firstIndex.set(r.name, index);
      else {
        const firstLine = t.locate([...at, 'rules', first, 'name'], 'value').line;
        t.add([...ruleAt, 'name'], `duplicate rule name "${r.name}" in this job (also rules[${first}]${firstLine ? `, line ${firstLine}` : ''}). Fix: give each rule its own name; the run report says which rule acted.`);
        ok = false;
      }
    }
    if (rule) rules.push(rule);
    else ok = false;
  });
  return ok ? rules : undefined;
}

function checkRule(raw: unknown, at: Segment[], t: RuleTools): Rule | undefined {
  if (!isObject(raw)) {
    t.add(at, `a rule must be a mapping with name:, match: and actions:, but it is ${describe(raw)}. Fix: see ${README}.`);
    return undefined;
  }
  const before = t.problemCount();
  t.unknownKeys(raw, at, RULE_KEYS, 'a rule', (key) => {
    if (MATCH_KEY_NAMES.includes(key)) return `"${key}" is a match key: put it under match:, e.g. match: { ${key}: … }.`;
    if (isAction(key)) return `"${key}" is an action: put it in the actions: list, e.g. actions: [ { ${key}: … } ].`;
    return undefined;
  });
  let name: string | undefined;
  if (typeof raw.name !== 'string' || raw.name.trim() === '') {
    t.add(raw.name === undefined ? at : [...at, 'name'], `the rule has no name. Fix: add name: (e.g. name: newsletters); the run report says which rule acted.`);
  } else name = raw.name;

  let match: MatchSpec | undefined;
  if (raw.match === undefined) {
    t.add(at, `the rule has no match:. Fix: add the conditions a message must meet, e.g. match: { fromDomain: news.example.com }.`);
  } else match = checkMatch(raw.match, [...at, 'match'], t);

  const actions = checkActions(raw.actions, at, t);
  const stop = t.boolean(raw, at, 'stop', false, 'true (later rules do not see a message this rule matched) or false');
  if (t.problemCount() !== before || name === undefined || match === undefined || actions === undefined) return undefined;
  return { name, match, actions, stop };
}

function checkMatch(raw: unknown, at: Segment[], t: RuleTools): MatchSpec | undefined {
  if (!isObject(raw)) {
    t.add(at, `match must be a mapping of conditions, but it is ${describe(raw)}. Fix: e.g. match: { subjectContains: invoice }.`);
    return undefined;
  }
  if (Object.keys(raw).length === 0) {
    t.add(at, `an empty match: {} would match every message. Fix: add a condition; if you really mean every message, write match: { olderThanDays: 0 }.`);
    return undefined;
  }
  const before = t.problemCount();
  t.unknownKeys(raw, at, MATCH_KEY_NAMES, 'match', (key) => {
    if (isAction(key)) return `"${key}" is an action, not a condition: put it in the rule's actions: list.`;
    if (key === 'stop' || key === 'name') return `"${key}" belongs to the rule: move it out of match:, one level up.`;
    if (key === 'all') return `all conditions of match: must already hold together; list them side by side in match:, and use any: [ … ] for "or".`;
    return undefined;
  });
  const spec: Record<string, unknown> = {};
  for (const key of KEY_NAMES) {
    if (raw[key] === undefined) continue;
    const value = (MATCH_KEYS[key].check as (v: unknown, p: Segment[], tools: RuleTools) => unknown)(raw[key], [...at, key], t);
    if (value !== undefined) spec[key] = value;
  }
  if (raw.any !== undefined) {
    if (!Array.isArray(raw.any) || raw.any.length === 0) {
      t.add([...at, 'any'], `any must be a non-empty list of match conditions (one of them must hold), but it is ${describe(raw.any)}${Array.isArray(raw.any) ? ' that is empty, which matches nothing' : ''}. Fix: e.g. any: [ { from: a@example.com }, { subjectContains: invoice } ].`);
    } else {
      const subs = raw.any.map((sub, i) => checkMatch(sub, [...at, 'any', i], t));
      if (subs.every((s) => s !== undefined)) spec.any = subs;
    }
  }
  return t.problemCount() === before ? (spec as MatchSpec) : undefined;
}

function checkActions(raw: unknown, ruleAt: Segment[], t: RuleTools): Action[] | undefined {
  const at = [...ruleAt, 'actions'];
  if (raw === undefined) {
    t.add(ruleAt, `the rule has no actions:. Fix: add a list, e.g. actions: [ { moveTo: Newsletters }, { markRead: true } ].`);
    return undefined;
  }
  if (!Array.isArray(raw) || raw.length === 0) {
    t.add(at, `actions must be a non-empty list, but it is ${describe(raw)}${Array.isArray(raw) ? ' that is empty' : ''}. Fix: e.g. actions: [ { flag: true } ].`);
    return undefined;
  }
  const before = t.problemCount();
  const actions: Action[] = [];
  const moves: { key: string; index: number }[] = [];
  raw.forEach((item, index) => {
    const action = checkAction(item, [...at, index], t);
    if (action) actions.push(action);
    // Judged on what was written, so a move with a bad path still counts here.
    const keys = isObject(item) ? Object.keys(item) : [];
    if (keys.length === 1 && isAction(keys[0]!) && ACTIONS[keys[0] as ActionName].execution.kind === 'move') moves.push({ key: keys[0]!, index });
  });
  if (moves.some((m) => m.key === 'moveTo') && moves.some((m) => m.key === 'delete')) {
    const second = moves[1]!;
    t.add([...at, second.index], `a rule may not both moveTo and delete: both move the message, and a message can only end up in one folder. Fix: keep one of them (delete moves to Deleted Items).`);
  } else if (moves.length > 1) {
    const second = moves[1]!;
    t.add([...at, second.index], `the rule moves the message twice (${moves.map((m) => m.key).join(', ')}); only one move can happen. Fix: keep one, and use copyTo to also file a copy elsewhere.`);
  }
  return t.problemCount() === before ? actions : undefined;
}

function checkAction(raw: unknown, at: Segment[], t: RuleTools): Action | undefined {
  if (typeof raw === 'string') {
    const close = suggest(raw, ACTION_NAMES);
    const fix = close ? `write { ${close}: ${ACTIONS[close as ActionName].bareValue} }` : `an action is a mapping with one key, e.g. { markRead: true }`;
    t.add(at, `an action must be a mapping such as { markRead: true }, but it is ${describe(raw)}. Fix: ${fix}.`);
    return undefined;
  }
  if (!isObject(raw)) {
    t.add(at, `an action must be a mapping such as { markRead: true }, but it is ${describe(raw)}. Fix: write one action per list item.`);
    return undefined;
  }
  const keys = Object.keys(raw);
  if (keys.length !== 1) {
    t.add(at, keys.length === 0
      ? `an empty action {}. Fix: write one action, e.g. { flag: true }, or remove the item.`
      : `an action has exactly one key, but this one has ${keys.length} (${keys.join(', ')}). Fix: write each as its own list item: [ ${keys.map((k) => `{ ${k}: … }`).join(', ')} ].`);
    if (keys.length === 0) return undefined;
    for (const k of keys) if (!isAction(k)) unknownAction(k, at, t);
    return undefined;
  }
  const key = keys[0]!;
  if (!isAction(key)) {
    unknownAction(key, at, t);
    return undefined;
  }
  const value = (ACTIONS[key].check as (v: unknown, p: Segment[], tools: RuleTools) => unknown)(raw[key], [...at, key], t);
  return value === undefined ? undefined : ({ [key]: value } as Action);
}

function unknownAction(key: string, at: Segment[], t: RuleTools): void {
  const close = suggest(key, ACTION_NAMES);
  const elsewhere = MATCH_KEY_NAMES.includes(key)
    ? `"${key}" is a condition: put it under match:.`
    : WELL_KNOWN_FOLDERS.includes(key.toLowerCase())
      ? `to move the message there write { moveTo: ${key.toLowerCase()} }.`
      : undefined;
  t.add([...at, key], `unknown action "${key}". Fix: ${elsewhere ?? (close ? `did you mean "${close}"?` : `an action is one of ${ACTION_NAMES.join(', ')}.`)}`, 'key');
}
