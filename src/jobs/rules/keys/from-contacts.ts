import { describe } from '../../../config/check-helpers.ts';
import type { KeyDefinition } from '../definition.ts';
import type { MessageView } from '../message.ts';

function contactsOf(msg: MessageView, contacts: ReadonlySet<string> | undefined): ReadonlySet<string> {
  if (!contacts) throw new Error(`Rule engine: fromContacts needs the person's contacts, but they were not loaded for message ${msg.id}. Load them when a rule uses fromContacts.`);
  return contacts;
}

/**
 * `fromContacts: true` (or false): the sender is (is not) one of the person's contacts. The contacts are kept in
 * the job's store and brought up to date with contacts delta at the start of each run that needs them.
 */
export const fromContacts: KeyDefinition<boolean> = {
  check: (raw, at, t) => {
    if (typeof raw === 'boolean') return raw;
    t.add(at, `fromContacts must be true (the sender is in your contacts) or false (is not), but it is ${describe(raw)}. Fix: write fromContacts: true.`);
    return undefined;
  },
  fields: ['from'],
  env: 'contacts',
  test: (value, msg, env) => (msg.from !== undefined && contactsOf(msg, env.contacts).has(msg.from.trim().toLowerCase())) === value,
  explain: (value, msg, matched, env) => {
    const known = msg.from !== undefined && contactsOf(msg, env.contacts).has(msg.from.trim().toLowerCase());
    return `fromContacts ${value} ${matched ? 'matched' : 'did not match'} (sender ${msg.from ?? '(none)'} is ${known ? '' : 'not '}in your contacts)`;
  },
  permission: { permission: 'Contacts.Read', why: 'reads your contacts' },
  readme: { example: 'fromContacts: true', text: 'the sender is (`false`: is not) one of your contacts (kept current with contacts delta)' },
};
