/**
 * Every match key of an inbox rule, in the order the jobs file lists them (`any` is the engine's own: an
 * "or" of sub-matches). Adding a key is one file in this folder and one line here.
 */
import type { KeyDefinition } from '../definition.ts';
import { attachmentName, attachmentType } from './attachments.ts';
import { bodyContains } from './body-contains.ts';
import { categories } from './categories.ts';
import { hasAttachments, isRead } from './flags.ts';
import { fromContacts } from './from-contacts.ts';
import { fromDomain } from './from-domain.ts';
import { from } from './from.ts';
import { header } from './header.ts';
import { importance } from './importance.ts';
import { olderThanDays } from './older-than-days.ts';
import { cc, to } from './recipients.ts';
import { sentToMe } from './sent-to-me.ts';
import { subjectContains } from './subject-contains.ts';
import { subjectMatches } from './subject-matches.ts';

const DEFINITIONS = {
  from, fromDomain, to, cc, subjectContains, subjectMatches, bodyContains, hasAttachments, importance, isRead, categories, olderThanDays,
  header, attachmentName, attachmentType, fromContacts, sentToMe,
};

export type KeyName = keyof typeof DEFINITIONS;
type ValueOf<D> = D extends KeyDefinition<infer V> ? V : never;
export type KeyValue<K extends KeyName> = ValueOf<(typeof DEFINITIONS)[K]>;

export const MATCH_KEYS: { readonly [K in KeyName]: KeyDefinition<KeyValue<K>> } = DEFINITIONS;
export const KEY_NAMES = Object.keys(MATCH_KEYS) as KeyName[];

/** The conditions of one rule: every key given must hold; `any`: at least one sub-match. */
export type MatchSpec = { [K in KeyName]?: KeyValue<K> } & { any?: MatchSpec[] };
