/**
 * The rule engine: which rules match a message and what to do about it. Pure: no I/O, no clock (the run's
 * start is passed in), so a dry run, `explain` and a real run plan exactly the same actions. What each match
 * key and action means lives in its definition (src/jobs/rules/keys/, src/jobs/rules/actions/); this file
 * only combines them.
 *
 * Semantics are DESIGN.md "Rule semantics". Decisions made here:
 * - Every text comparison is case-insensitive; `subjectMatches` is compiled with
 *   SUBJECT_MATCHES_FLAGS ('i').
 * - `bodyContains` and the body it searches are both whitespace-normalized
 *   (runs of spaces, tabs, newlines, &nbsp; count as one space), so a phrase
 *   still matches when the HTML wraps it across lines.
 * - `olderThanDays: N` holds when receivedDateTime <= runStart - N × 24 h.
 * - Matching always sees the message as fetched; the planner's no-op elision
 *   (markRead/flag/setImportance/categorize that change nothing) follows the
 *   state the earlier planned actions would leave.
 * - Only the first move (`moveTo` or `delete`) counts and it is planned last.
 */
import type { Rule } from '../config/jobs-file.ts';
import { ACTIONS, actionName, type Action, type ActionName } from './rules/actions/index.ts';
import type { KeyDefinition, KeyEnv, KeyFetch, MatchEnv, PlanState } from './rules/definition.ts';
import { lower } from './rules/definition.ts';
import { MATCH_KEYS, type KeyName, type MatchSpec } from './rules/keys/index.ts';
import type { MessageView } from './rules/message.ts';

export { stripHtml, toMessageView, type MessageView } from './rules/message.ts';

export type PlannedActionName = ActionName;

/**
 * One step for the runner: `value` is the action's planned value (rules/actions/<action>.ts `plan`): a
 * folder path, a boolean, the categories to ADD, the addresses to forward to, a URL. `because`, in dry runs
 * and `explain`: why the rule matched.
 */
export type PlannedAction = { rule: string; action: ActionName; value: unknown; because?: string };

/** Fields every run reads: sender, subject and date for reports and webhooks, and what no-op elision reads. */
const BASE_SELECT = ['subject', 'from', 'receivedDateTime', 'isRead', 'flag', 'categories', 'importance'];

/** A spec's keys, those that need a fetch (headers, attachments) last: they are looked at only when the others hold. */
function keysOf(spec: MatchSpec): KeyName[] {
  const keys = (Object.keys(spec) as (KeyName | 'any')[]).filter((k): k is KeyName => k !== 'any' && spec[k] !== undefined);
  return keys.some((k) => MATCH_KEYS[k].fetch) ? [...keys.filter((k) => !MATCH_KEYS[k].fetch), ...keys.filter((k) => MATCH_KEYS[k].fetch)] : keys;
}

function usedKeys(rules: Rule[]): Set<KeyName> {
  const keys = new Set<KeyName>();
  const walk = (spec: MatchSpec): void => {
    for (const key of keysOf(spec)) keys.add(key);
    for (const inner of spec.any ?? []) walk(inner);
  };
  for (const rule of rules) walk(rule.match);
  return keys;
}

/**
 * The message fields a job's rules read, for delta's `$select`: always sender, subject, date and the
 * properties the planner's no-op elision reads (isRead, flag, categories, importance); others (recipients,
 * attachments, the body) only when some rule's keys read them. Asking for less halves a delta page
 * (docs/BENCHMARKS.md). Example: `selectFor([{ match: { to: 'me@x' }, … }])` includes 'toRecipients'.
 */
export function selectFor(rules: Rule[]): string[] {
  const used = usedKeys(rules);
  const fields = new Set(BASE_SELECT);
  for (const key of Object.keys(MATCH_KEYS) as KeyName[]) if (used.has(key)) for (const f of MATCH_KEYS[key].fields) fields.add(f);
  return [...fields];
}

/** What the run must look up once (the owner's address, the contacts) because some rule's keys read it. */
export function envNeeds(rules: Rule[]): Set<KeyEnv> {
  return new Set([...usedKeys(rules)].flatMap((key) => (MATCH_KEYS[key].env ? [MATCH_KEYS[key].env!] : [])));
}

/** What must be fetched per message (headers, attachments) because some rule's keys read it; empty for most jobs. */
export function fetchNeeds(rules: Rule[]): Set<KeyFetch> {
  return new Set([...usedKeys(rules)].flatMap((key) => (MATCH_KEYS[key].fetch ? [MATCH_KEYS[key].fetch!] : [])));
}

const missing = (fetch: KeyFetch, msg: MessageView) => (fetch === 'headers' ? msg.headers === undefined : msg.attachments === undefined);

/**
 * What to fetch for one message before it can be planned: the headers or attachments of the rules that the
 * keys delta answers still leave possible (a key whose data is missing counts as holding). Nothing once the
 * message is fetched, or when no rule could match it anyway.
 *
 * @example extrasFor(rules, view, env) // Set { 'headers' } when a header rule's fromDomain matched
 */
export function extrasFor(rules: Rule[], msg: MessageView, env: MatchEnv): Set<KeyFetch> {
  const out = new Set<KeyFetch>();
  const could = (spec: MatchSpec, needed: Set<KeyFetch>): boolean => {
    for (const key of keysOf(spec)) {
      const fetch = MATCH_KEYS[key].fetch;
      if (fetch && missing(fetch, msg)) {
        needed.add(fetch);
        continue;
      }
      if (!keyOf(key).test(spec[key], msg, env)) return false;
    }
    return spec.any === undefined || spec.any.map((sub) => could(sub, needed)).some(Boolean);
  };
  for (const rule of rules) {
    const needed = new Set<KeyFetch>();
    if (could(rule.match, needed)) for (const f of needed) out.add(f);
  }
  return out;
}

/** True when some rule (also inside `any`) reads the body, so the runner must fetch bodies. */
export function needsBody(rules: Rule[]): boolean {
  return [...usedKeys(rules)].some((key) => MATCH_KEYS[key].fields.includes('body'));
}

/** How one key of a rule judged a message; `any` lists its sub-matches. */
export interface KeyVerdict {
  key: KeyName | 'any';
  matched: boolean;
  reason: string;
}

/** Whether a match holds, and the key that decided it: the first that failed, else every key's reason. */
export interface MatchExplanation {
  matched: boolean;
  reasons: KeyVerdict[];
}

/** A key's definition with its value type erased: the spec was checked against that same definition. */
function keyOf(key: KeyName): KeyDefinition<unknown> {
  return MATCH_KEYS[key] as KeyDefinition<never> as KeyDefinition<unknown>;
}

/** The run's start alone, or everything a key may compare with (MatchEnv). */
type When = Date | MatchEnv;
const envOf = (when: When): MatchEnv => (when instanceof Date ? { runStart: when } : when);

function testKey(key: KeyName, spec: MatchSpec, msg: MessageView, env: MatchEnv): boolean {
  return keyOf(key).test(spec[key], msg, env);
}

/**
 * Whether every condition of `spec` holds for `msg` (`any`: at least one sub-spec).
 * Throws when the spec needs the body and `msg.bodyText` is undefined: fetch bodies
 * whenever needsBody(rules) is true.
 *
 * @example matches({ fromDomain: 'news.example.com', isRead: false }, view, runStart)
 */
export function matches(spec: MatchSpec, msg: MessageView, when: When): boolean {
  const env = envOf(when);
  const keys = keysOf(spec);
  if (msg.bodyText === undefined && keys.includes('bodyContains')) {
    throw new Error(`Rule engine: bodyContains needs the message body, but message ${msg.id} was fetched without it. Fetch body whenever needsBody(rules) is true.`);
  }
  for (const key of keys) if (!testKey(key, spec, msg, env)) return false;
  return spec.any === undefined || spec.any.some((sub) => matches(sub, msg, env));
}

/**
 * `matches` with its reasons, for `explain` and dry runs: on a miss, the first key that failed; on a match,
 * every key's reason ("fromDomain news.example.com matched sender news@news.example.com").
 */
export function explainMatch(spec: MatchSpec, msg: MessageView, when: When): MatchExplanation {
  const env = envOf(when);
  const reasons: KeyVerdict[] = [];
  for (const key of keysOf(spec)) {
    const matched = testKey(key, spec, msg, env);
    const reason = keyOf(key).explain(spec[key], msg, matched, env);
    if (!matched) return { matched: false, reasons: [{ key, matched, reason }] };
    reasons.push({ key, matched, reason });
  }
  if (spec.any !== undefined) {
    const subs = spec.any.map((sub) => explainMatch(sub, msg, env));
    const hit = subs.findIndex((s) => s.matched);
    if (hit < 0) {
      const why = subs.map((s, i) => `[${i}] ${s.reasons.map((r) => r.reason).join('; ')}`).join(' | ');
      return { matched: false, reasons: [{ key: 'any', matched: false, reason: `any: none matched (${why})` }] };
    }
    reasons.push({ key: 'any', matched: true, reason: `any[${hit}]: ${subs[hit]!.reasons.map((r) => r.reason).join('; ')}` });
  }
  return { matched: true, reasons };
}

/** One rule as `explain` shows it: matched or not, why, and the actions it would take. */
export interface RuleExplanation {
  rule: string;
  matched: boolean;
  because: string;
  actions: PlannedAction[];
  /** This rule matched with `stop: true`: later rules were not looked at. */
  stopped?: boolean;
}

/**
 * Every rule in order for one message, matched or not, with the key that decided it, and the actions each
 * would take (as planActions would plan them). Rules after a matching `stop: true` are listed as not reached.
 *
 * @example explainRules(job.rules, toMessageView(m), new Date())
 */
export function explainRules(rules: Rule[], msg: MessageView, when: When): RuleExplanation[] {
  const planned = planActions(rules, msg, when, { explain: true });
  const out: RuleExplanation[] = [];
  let stopped = false;
  for (const rule of rules) {
    if (stopped) {
      out.push({ rule: rule.name, matched: false, because: 'not looked at: an earlier matching rule has stop: true', actions: [] });
      continue;
    }
    const { matched, reasons } = explainMatch(rule.match, msg, when);
    const actions = planned.filter((p) => p.rule === rule.name);
    out.push({ rule: rule.name, matched, because: reasons.map((r) => r.reason).join('; '), actions, ...(matched && rule.stop ? { stopped: true } : {}) });
    if (matched && rule.stop) stopped = true;
  }
  return out;
}

/**
 * What the rules do to one message, in execution order: every non-move action in
 * rule order, then at most one move (the first `moveTo` or `delete` planned).
 * Matching sees `msg` as fetched; identical actions are planned once, under the
 * first rule; actions that would change nothing are left out. With `explain`, each
 * step carries `because`: why its rule matched.
 *
 * @example planActions(job.rules, toMessageView(m), runStart)
 *   // [{ rule: 'newsletters', action: 'markRead', value: true }, { rule: 'newsletters', action: 'moveTo', value: 'Newsletters' }]
 */
export function planActions(rules: Rule[], msg: MessageView, when: When, options: { explain?: boolean } = {}): PlannedAction[] {
  const env = envOf(when);
  if (msg.bodyText === undefined && needsBody(rules)) {
    throw new Error(`Rule engine: a rule uses bodyContains, but message ${msg.id} was fetched without its body. Fetch body whenever needsBody(rules) is true.`);
  }
  const planned: PlannedAction[] = [];
  let move: PlannedAction | undefined;
  const seen = new Set<string>();
  const state: PlanState = {
    isRead: msg.isRead,
    flagged: msg.flagged,
    importance: msg.importance,
    categories: new Set(msg.categories.map(lower)),
    first: (action, key) => {
      const id = `${action}\0${key}`;
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    },
  };

  for (const rule of rules) {
    let because: string | undefined;
    if (options.explain) {
      const why = explainMatch(rule.match, msg, env);
      if (!why.matched) continue;
      because = why.reasons.map((r) => r.reason).join('; ');
    } else if (!matches(rule.match, msg, env)) continue;
    for (const action of rule.actions) {
      const step = planOne(rule.name, action, because);
      if (!step) continue;
      if (ACTIONS[step.action].execution.kind === 'move') move ??= step;
      else planned.push(step);
    }
    if (rule.stop) break;
  }
  return move ? [...planned, move] : planned;

  function planOne(rule: string, action: Action, because: string | undefined): PlannedAction | undefined {
    const name = actionName(action);
    const definition = ACTIONS[name] as { plan(value: unknown, state: PlanState): unknown };
    const value = definition.plan((action as Record<string, unknown>)[name], state);
    if (value === undefined) return undefined;
    return because === undefined ? { rule, action: name, value } : { rule, action: name, value, because };
  }
}
