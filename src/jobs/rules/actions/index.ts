/**
 * Every action of an inbox rule, in the order the jobs file lists them. Adding an action is one file in this
 * folder and one line here; the mapped type below makes the compiler refuse a name without its definition.
 */
import type { ActionDefinition } from '../definition.ts';
import { categorize } from './categorize.ts';
import { copyTo } from './copy-to.ts';
import { deleteAction } from './delete.ts';
import { flag } from './flag.ts';
import { forwardTo } from './forward-to.ts';
import { markRead } from './mark-read.ts';
import { moveTo } from './move-to.ts';
import { reply } from './reply.ts';
import { saveAttachments } from './save-attachments.ts';
import { setImportance } from './set-importance.ts';
import { snooze } from './snooze.ts';
import { webhook } from './webhook.ts';

const DEFINITIONS = { moveTo, copyTo, markRead, flag, categorize, setImportance, forwardTo, delete: deleteAction, webhook, saveAttachments, snooze, reply };

export type ActionName = keyof typeof DEFINITIONS;
type Parts<D> = D extends ActionDefinition<infer V, infer P> ? { value: V; planned: P } : never;
/** An action's value as written in the jobs file (after checking). */
export type ActionValue<K extends ActionName> = Parts<(typeof DEFINITIONS)[K]>['value'];
/** An action's planned value (the run report's `value`). */
export type PlannedValue<K extends ActionName> = Parts<(typeof DEFINITIONS)[K]>['planned'];

export const ACTIONS: { readonly [K in ActionName]: ActionDefinition<ActionValue<K>, PlannedValue<K>> } = DEFINITIONS;
export const ACTION_NAMES = Object.keys(ACTIONS) as ActionName[];

/** One action of a rule: a mapping with exactly one key. */
export type Action = { [K in ActionName]: { [P in K]: ActionValue<K> } }[ActionName];

/** The name of a checked action (its one key). */
export function actionName(action: Action): ActionName {
  return Object.keys(action)[0] as ActionName;
}
