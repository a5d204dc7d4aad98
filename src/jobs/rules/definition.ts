/**
 * What one match key and one action of an inbox rule are: everything about it in one definition (its
 * jobs-file check and messages, the message fields it reads, how it evaluates or plans and executes,
 * whether it is once-only, the Graph permission it needs, and its README line). The registries are
 * src/jobs/rules/keys/index.ts and src/jobs/rules/actions/index.ts; every part is required, so the compiler
 * refuses a definition that forgets one, and nothing dispatches on names with a default branch.
 */
import { describe, isObject, type Segment } from '../../config/check-helpers.ts';
import type { DelegatedOnlyPermission, GraphPermission } from '../../auth/permissions.ts';
import type { BatchRequest } from '../../graph/client.ts';
import type { GraphMessage } from '../../graph/mailbox.ts';
import type { JobContext } from '../context.ts';
import type { MessageView } from './message.ts';

/** The jobs-file checker's tools a definition reports problems with (src/config/jobs-file-checker.ts). */
export interface RuleCheckTools {
  add(at: Segment[], message: string, where?: 'key' | 'value'): void;
  /** A string or a non-empty list of non-empty strings (reports the problem itself). */
  textList(v: unknown, at: Segment[], key: string): string[] | undefined;
  /** An absolute path for one written in the jobs file (relative paths start at the file's folder). */
  resolvePath(p: string): string;
  /** The jobs file's `timezone:` (canonical IANA name), if it sets one. */
  timezone: string | undefined;
}

/** What a key may compare with besides the message: the run's start (olderThanDays), the run's own look-ups. */
export interface MatchEnv {
  runStart: Date;
  /** The mailbox owner's address, lower-cased (sentToMe); loaded only when a rule needs it. */
  me?: string;
  /** Every address of the person's contacts, lower-cased (fromContacts); loaded only when a rule needs it. */
  contacts?: ReadonlySet<string>;
}

/** What a key reads that delta does not give: fetched per candidate (`fetch`) or once per run (`env`). */
export type KeyFetch = 'headers' | 'attachments';
export type KeyEnv = 'me' | 'contacts';

/** The README's line for a key or an action: `example` is YAML as written in a rule. */
export interface ReadmeEntry {
  example: string;
  text: string;
}

/** A permission a key or action needs, and why in plain words ("changes mail", "forwards mail"). */
export interface PermissionUse {
  permission: GraphPermission | DelegatedOnlyPermission;
  why: string;
}

/** One match key. `V` is its value as checked (what the rule keeps). */
export interface KeyDefinition<V> {
  /** Checks the raw jobs-file value at `at` (already `[…, 'match', key]`); reports problems through `t`. */
  check(raw: unknown, at: Segment[], t: RuleCheckTools): V | undefined;
  /** Message fields it reads, for delta's `$select`. */
  fields: readonly string[];
  test(value: V, msg: MessageView, env: MatchEnv): boolean;
  /** Why it matched or not, for `explain` and dry runs: "fromDomain news.example.com matched sender a@news.example.com". */
  explain(value: V, msg: MessageView, matched: boolean, env: MatchEnv): string;
  permission: PermissionUse | undefined;
  /** Fetched for the messages still candidates after the keys delta can answer (batched, 20 per request). */
  fetch?: KeyFetch;
  /** Looked up once per run when some rule uses the key. */
  env?: KeyEnv;
  readme: ReadmeEntry;
}

/** The planner's view of a message after the actions planned so far (no-op elision; never for matching). */
export interface PlanState {
  isRead: boolean;
  flagged: boolean;
  importance: string;
  /** Lower-cased. */
  categories: Set<string>;
  /** True the first time `key` is planned for `action` on this message (dedupes copies, forwards, webhooks). */
  first(action: string, key: string): boolean;
}

/** A failure of an action the agent carries out itself (`kind: 'call'`), and whether it may have happened. */
export class ActionCallError extends Error {
  constructor(message: string, readonly executed: boolean | 'unknown', readonly transient: boolean, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ActionCallError';
  }
}

/** One planned step as the executor sees it. */
export interface PlannedStep<P = unknown> {
  rule: string;
  action: string;
  value: P;
}

/**
 * How an action is carried out:
 * - `patch`: a property of the message; all of one message's go into one PATCH body.
 * - `graph`: one Graph request, sent in the page's `$batch`es.
 * - `move`: one Graph request that moves the message; only the first planned move counts and it runs last.
 * - `call`: the agent does it itself (an HTTP call that is not Graph); throws ActionCallError on failure.
 */
export type Execution<P> =
  | { kind: 'patch'; patch(value: P, body: Record<string, unknown>, had: { categories: string[] }): void }
  | { kind: 'graph'; request(ctx: ActionContext, message: GraphMessage, value: P): Promise<BatchRequest> }
  | { kind: 'move'; request(ctx: ActionContext, message: GraphMessage, value: P): Promise<BatchRequest> }
  | { kind: 'call'; run(ctx: ActionContext, message: GraphMessage, step: PlannedStep<P>): Promise<CallResult> };

/** What an action's execution may use of the run. */
export type ActionContext = Pick<JobContext, 'job' | 'mailbox' | 'graph' | 'store' | 'fetch' | 'signal' | 'runStart' | 'log'>;

/** A call that did what it should returns nothing; one that rightly did nothing says why (reported as skipped). */
export type CallResult = void | { skipped: string };

/** One action. `V`: its value as checked; `P`: the planned value (what the run report shows). */
export interface ActionDefinition<V, P> {
  check(raw: unknown, at: Segment[], t: RuleCheckTools): V | undefined;
  /** The step's value, or undefined when it would change nothing (given what was planned before it). */
  plan(value: V, state: PlanState): P | undefined;
  execution: Execution<P>;
  /** Never repeated when a crash or a lost answer leaves it unsure whether it happened (reported 'unsure'). */
  onceOnly: boolean;
  permission: PermissionUse | undefined;
  /** When only some values need `permission` (saveAttachments: a OneDrive target, not a local folder). */
  permissionFor?(value: V): PermissionUse | undefined;
  /** The value shown in "did you mean" fixes: 'true' for an action whose only value is true, else '…'. */
  bareValue: 'true' | '…';
  readme: ReadmeEntry;
}

/** Text or a list of texts, checked by `each` per item; the helper of every text-valued key. */
export function checkTexts(raw: unknown, at: Segment[], key: string, t: RuleCheckTools, each?: (s: string, at: Segment[]) => boolean): string | string[] | undefined {
  const list = t.textList(raw, at, key);
  if (list === undefined) return undefined;
  let ok = true;
  list.forEach((s, i) => {
    if (each && !each(s, Array.isArray(raw) ? [...at, i] : at)) ok = false;
  });
  return ok ? (raw as string | string[]) : undefined;
}

export const listOf = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
export const lower = (s: string) => s.trim().toLowerCase();
/** `a, b or c` for a reason line. */
export const showList = (v: string | string[]) => listOf(v).join(', ');

/** A key's reason line: `fromDomain news.example.com matched sender a@news.example.com`. */
export function verdict(key: string, value: unknown, matched: boolean, what: string): string {
  const shown = Array.isArray(value) ? value.join(', ') : String(value);
  return `${key} ${shown} ${matched ? 'matched' : 'did not match'} ${what}`;
}

/** The `plan` of an action that sets one property: nothing when the message (as planned so far) already has it. */
export function planChange<F extends 'isRead' | 'flagged' | 'importance'>(field: F) {
  return <V extends PlanState[F]>(value: V, state: PlanState): V | undefined => {
    if (state[field] === value) return undefined;
    state[field] = value;
    return value;
  };
}

/** What every action that changes a message needs. */
export const CHANGES_MAIL: PermissionUse = { permission: 'Mail.ReadWrite', why: 'changes mail' };

/**
 * A value that must be a mapping of `allowed` keys (`header`, `reply`, `saveAttachments`): the mapping, or
 * undefined after reporting what is wrong. `takes` says what it holds, `example` how to write it.
 */
export function checkMapping(raw: unknown, at: Segment[], t: RuleCheckTools, key: string, allowed: readonly string[], takes: string, example: string): Record<string, unknown> | undefined {
  if (!isObject(raw)) {
    t.add(at, `${key} takes a mapping with ${takes}, but it is ${describe(raw)}. Fix: ${example}.`);
    return undefined;
  }
  const unknown = Object.keys(raw).find((k) => !allowed.includes(k));
  if (unknown !== undefined) {
    t.add([...at, unknown], `unknown key "${unknown}" in ${key}. Fix: ${key} takes ${takes}, ${example}.`, 'key');
    return undefined;
  }
  return raw;
}
