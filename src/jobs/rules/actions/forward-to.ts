import { isAddress } from '../../../config/check-helpers.ts';
import { checkTexts, listOf, lower, type ActionDefinition } from '../definition.ts';

/** `forwardTo: assistant@example.com` (or a list): once per message and address, ever. */
export const forwardTo: ActionDefinition<string | string[], string[]> = {
  check: (raw, at, t) =>
    checkTexts(raw, at, 'forwardTo', t, (s, p) => {
      if (isAddress(s.trim())) return true;
      t.add(p, `forwardTo takes email addresses, and ${JSON.stringify(s)} is not one. Fix: e.g. { forwardTo: assistant@example.com }.`);
      return false;
    }),
  plan: (value, state) => {
    const to = listOf(value).filter((a) => state.first('forwardTo', lower(a))).map((a) => a.trim());
    return to.length > 0 ? to : undefined;
  },
  execution: { kind: 'graph', request: async ({ mailbox }, { id }, to) => mailbox.forwardRequest(id, to) },
  onceOnly: true,
  permission: { permission: 'Mail.Send', why: 'forwards mail' },
  bareValue: '…',
  readme: { example: 'forwardTo: assistant@example.com', text: 'forwards the message (or to a list), once per message ever' },
};
