/**
 * The rule engine: which rules match a message and what to do about it. Pure: no
 * I/O, no clock (the run's start is passed in), so a dry run and a real run plan
 * exactly the same actions.
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
import type { Action, Importance, MatchSpec, Rule } from '../config/jobs-file.ts';
import { SUBJECT_MATCHES_FLAGS } from '../config/jobs-file.ts';

export interface MessageView {
  id: string;
  subject: string;
  /** Sender address as Graph gives it (`from.emailAddress.address`). */
  from?: string;
  toRecipients: string[];
  ccRecipients: string[];
  receivedDateTime: string;
  hasAttachments: boolean;
  importance: Importance;
  isRead: boolean;
  categories: string[];
  /** Whole body, HTML stripped, whitespace collapsed; undefined when the body was not fetched. */
  bodyText?: string;
  flagged: boolean;
}

export type PlannedActionName =
  | 'moveTo'
  | 'copyTo'
  | 'markRead'
  | 'flag'
  | 'categorize'
  | 'setImportance'
  | 'forwardTo'
  | 'delete'
  | 'webhook';

/**
 * One step for the runner. `value` by action: moveTo/copyTo: folder path (string);
 * markRead/flag: boolean; categorize: string[] to ADD (never already present);
 * setImportance: 'low'|'normal'|'high'; forwardTo: string[] of addresses;
 * delete: true (move to Deleted Items); webhook: URL string.
 */
export type PlannedAction = { rule: string; action: PlannedActionName; value: unknown };

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Builds the engine's view of a Graph message (v1.0 `message` resource JSON).
 *
 * @example toMessageView(await graph.get(`/me/messages/${id}?$select=…,body`))
 */
export function toMessageView(graphMessage: any): MessageView {
  const m = graphMessage ?? {};
  const addresses = (list: unknown): string[] =>
    Array.isArray(list)
      ? list.map((r) => r?.emailAddress?.address).filter((a): a is string => typeof a === 'string' && a !== '')
      : [];
  const importance: string = typeof m.importance === 'string' ? m.importance.toLowerCase() : 'normal';
  const from = m.from?.emailAddress?.address;
  let bodyText: string | undefined;
  if (m.body && typeof m.body.content === 'string') {
    const html = typeof m.body.contentType === 'string' && m.body.contentType.toLowerCase() === 'html';
    bodyText = normalizeSpace(html ? stripHtml(m.body.content) : m.body.content);
  }
  return {
    id: String(m.id ?? ''),
    subject: typeof m.subject === 'string' ? m.subject : '',
    ...(typeof from === 'string' && from !== '' ? { from } : {}),
    toRecipients: addresses(m.toRecipients),
    ccRecipients: addresses(m.ccRecipients),
    receivedDateTime: typeof m.receivedDateTime === 'string' ? m.receivedDateTime : '',
    hasAttachments: m.hasAttachments === true,
    importance: importance === 'low' || importance === 'high' ? importance : 'normal',
    isRead: m.isRead === true,
    categories: Array.isArray(m.categories) ? m.categories.filter((c: unknown): c is string => typeof c === 'string') : [],
    ...(bodyText !== undefined ? { bodyText } : {}),
    flagged: m.flag?.flagStatus === 'flagged',
  };
}

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };
const BLOCK_TAGS = /^(?:br|p|div|tr|td|th|li|ul|ol|table|h[1-6]|hr|blockquote|pre|section|article|header|footer|title)$/i;

/**
 * Text of an HTML body: <script>, <style>, <head> content and comments dropped,
 * tags removed (block tags become a line break so words do not run together),
 * then entities decoded once (`&amp;lt;` is the text `&lt;`).
 *
 * @example stripHtml('<p>Tom &amp; Jerry</p><p>2 &lt; 3</p>') // '\nTom & Jerry\n\n2 < 3\n'
 */
export function stripHtml(html: string): string {
  const text = html
    .replace(/<!--[\s\S]*?(?:-->|$)/g, '')
    .replace(/<(script|style|head|template)\b[^>]*>[\s\S]*?(?:<\/\1\s*>|$)/gi, ' ')
    .replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, '$1')
    .replace(/<[!?][^>]*>/g, '')
    .replace(/<\/?([a-zA-Z][a-zA-Z0-9:-]*)(?:[^>"']|"[^"]*"|'[^']*')*>/g, (_tag, name: string) => (BLOCK_TAGS.test(name) ? '\n' : ''))
    // A tag with an unbalanced quote survives the pattern above; drop it up to its first '>'.
    .replace(/<\/?[a-zA-Z][^>]*>/g, '');
  return decodeEntities(text);
}

function decodeEntities(text: string): string {
  return text.replace(/&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]+);/g, (entity, body: string) => {
    if (body.startsWith('#')) {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      const valid = code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff);
      return valid ? String.fromCodePoint(code) : '\uFFFD';
    }
    return NAMED_ENTITIES[body.toLowerCase()] ?? entity;
  });
}

function normalizeSpace(s: string): string {
  return s.replace(/[\s\u00a0]+/g, ' ').trim();
}

/**
 * The message fields a job's rules read, for delta's `$select`: always sender, subject, date and the
 * properties the planner's no-op elision reads (isRead, flag, categories, importance); recipients,
 * attachments and the body only when some rule matches on them. Asking for less halves a delta page
 * (docs/BENCHMARKS.md). Example: `selectFor([{ match: { to: 'me@x' }, … }])` includes 'toRecipients'.
 */
export function selectFor(rules: Rule[]): string[] {
  const keys = new Set<string>();
  const walk = (spec: MatchSpec): void => {
    for (const key of Object.keys(spec)) keys.add(key);
    for (const inner of spec.any ?? []) walk(inner);
  };
  for (const rule of rules) walk(rule.match);
  const fields = ['subject', 'from', 'receivedDateTime', 'isRead', 'flag', 'categories', 'importance'];
  if (keys.has('to')) fields.push('toRecipients');
  if (keys.has('cc')) fields.push('ccRecipients');
  if (keys.has('hasAttachments')) fields.push('hasAttachments');
  if (keys.has('bodyContains')) fields.push('body');
  return fields;
}

/** True when some rule (also inside `any`) uses bodyContains, so the runner must fetch bodies. */
export function needsBody(rules: Rule[]): boolean {
  const uses = (spec: MatchSpec): boolean => spec.bodyContains !== undefined || (spec.any ?? []).some(uses);
  return rules.some((r) => uses(r.match));
}

const listOf = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
const lower = (s: string) => s.trim().toLowerCase();

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

/** `a@news.example.com` is in `news.example.com`, so is `a@mail.news.example.com`; `a@evilnews.example.com` is not. */
function inDomain(address: string, domain: string): boolean {
  const at = address.lastIndexOf('@');
  if (at < 0) return false;
  const host = lower(address.slice(at + 1)).replace(/\.$/, '');
  const d = lower(domain).replace(/^[@.]+/, '').replace(/\.$/, '');
  return d !== '' && (host === d || host.endsWith(`.${d}`));
}

/**
 * Whether every condition of `spec` holds for `msg` (`any`: at least one sub-spec).
 * Throws when the spec needs the body and `msg.bodyText` is undefined: fetch bodies
 * whenever needsBody(rules) is true.
 *
 * @example matches({ fromDomain: 'news.example.com', isRead: false }, view, runStart)
 */
export function matches(spec: MatchSpec, msg: MessageView, runStart: Date): boolean {
  if (spec.bodyContains !== undefined && msg.bodyText === undefined) {
    throw new Error(`Rule engine: bodyContains needs the message body, but message ${msg.id} was fetched without it. Fetch body whenever needsBody(rules) is true.`);
  }
  const anyText = (v: string | string[] | undefined, test: (needle: string) => boolean) => v === undefined || listOf(v).some(test);
  const subject = msg.subject.toLowerCase();
  const checks: (() => boolean)[] = [
    () => anyText(spec.from, (a) => msg.from !== undefined && lower(msg.from) === lower(a)),
    () => anyText(spec.fromDomain, (d) => msg.from !== undefined && inDomain(msg.from, d)),
    () => anyText(spec.to, (a) => msg.toRecipients.some((r) => lower(r) === lower(a))),
    () => anyText(spec.cc, (a) => msg.ccRecipients.some((r) => lower(r) === lower(a))),
    () => anyText(spec.subjectContains, (s) => subject.includes(s.toLowerCase())),
    () => anyText(spec.subjectMatches, (p) => subjectRegex(p).test(msg.subject)),
    () => anyText(spec.bodyContains, (s) => normalizeSpace(msg.bodyText!).toLowerCase().includes(normalizeSpace(s).toLowerCase())),
    () => spec.hasAttachments === undefined || msg.hasAttachments === spec.hasAttachments,
    () => spec.importance === undefined || listOf(spec.importance).includes(msg.importance),
    () => spec.isRead === undefined || msg.isRead === spec.isRead,
    () => anyText(spec.categories, (c) => msg.categories.some((m) => lower(m) === lower(c))),
    () => {
      if (spec.olderThanDays === undefined) return true;
      const received = Date.parse(msg.receivedDateTime);
      return !Number.isNaN(received) && received <= runStart.getTime() - spec.olderThanDays * DAY_MS;
    },
    () => spec.any === undefined || spec.any.some((sub) => matches(sub, msg, runStart)),
  ];
  return checks.every((check) => check());
}

/**
 * What the rules do to one message, in execution order: every non-move action in
 * rule order, then at most one move (the first `moveTo` or `delete` planned).
 * Matching sees `msg` as fetched; identical actions are planned once, under the
 * first rule; actions that would change nothing are left out.
 *
 * @example planActions(job.rules, toMessageView(m), runStart)
 *   // [{ rule: 'newsletters', action: 'markRead', value: true }, { rule: 'newsletters', action: 'moveTo', value: 'Newsletters' }]
 */
export function planActions(rules: Rule[], msg: MessageView, runStart: Date): PlannedAction[] {
  if (msg.bodyText === undefined && needsBody(rules)) {
    throw new Error(`Rule engine: a rule uses bodyContains, but message ${msg.id} was fetched without its body. Fetch body whenever needsBody(rules) is true.`);
  }
  const planned: PlannedAction[] = [];
  let move: PlannedAction | undefined;
  // State after the actions planned so far, for no-op elision only (never for matching).
  const state = {
    isRead: msg.isRead,
    flagged: msg.flagged,
    importance: msg.importance,
    categories: new Set(msg.categories.map(lower)),
  };
  const copies = new Set<string>();
  const forwards = new Set<string>();
  const webhooks = new Set<string>();

  for (const rule of rules) {
    if (!matches(rule.match, msg, runStart)) continue;
    for (const action of rule.actions) {
      const step = planOne(rule.name, action);
      if (step) planned.push(step);
    }
    if (rule.stop) break;
  }
  return move ? [...planned, move] : planned;

  function planOne(name: string, action: Action): PlannedAction | undefined {
    if ('moveTo' in action) {
      move ??= { rule: name, action: 'moveTo', value: action.moveTo };
      return undefined;
    }
    if ('delete' in action) {
      move ??= { rule: name, action: 'delete', value: true };
      return undefined;
    }
    if ('copyTo' in action) {
      const key = folderKey(action.copyTo);
      if (copies.has(key)) return undefined;
      copies.add(key);
      return { rule: name, action: 'copyTo', value: action.copyTo };
    }
    if ('markRead' in action) {
      if (state.isRead === action.markRead) return undefined;
      state.isRead = action.markRead;
      return { rule: name, action: 'markRead', value: action.markRead };
    }
    if ('flag' in action) {
      if (state.flagged === action.flag) return undefined;
      state.flagged = action.flag;
      return { rule: name, action: 'flag', value: action.flag };
    }
    if ('setImportance' in action) {
      if (state.importance === action.setImportance) return undefined;
      state.importance = action.setImportance;
      return { rule: name, action: 'setImportance', value: action.setImportance };
    }
    if ('categorize' in action) {
      const add: string[] = [];
      for (const c of action.categorize) {
        if (state.categories.has(lower(c))) continue;
        state.categories.add(lower(c));
        add.push(c);
      }
      return add.length > 0 ? { rule: name, action: 'categorize', value: add } : undefined;
    }
    if ('forwardTo' in action) {
      const to: string[] = [];
      for (const a of listOf(action.forwardTo)) {
        if (forwards.has(lower(a))) continue;
        forwards.add(lower(a));
        to.push(a.trim());
      }
      return to.length > 0 ? { rule: name, action: 'forwardTo', value: to } : undefined;
    }
    if ('webhook' in action) {
      if (webhooks.has(action.webhook)) return undefined;
      webhooks.add(action.webhook);
      return { rule: name, action: 'webhook', value: action.webhook };
    }
    return undefined;
  }
}

/** Exchange folder names are case-insensitive. */
function folderKey(path: string): string {
  return path.split('/').map(lower).join('/');
}
