import { describe } from '../../../config/check-helpers.ts';
import { CHANGES_MAIL, type ActionDefinition } from '../definition.ts';

/** `delete: true`: a move to Deleted Items. */
export const deleteAction: ActionDefinition<true, true> = {
  check: (raw, at, t) => {
    if (raw === true) return true;
    t.add(at, `delete must be true (it moves the message to Deleted Items), but it is ${describe(raw)}. Fix: write { delete: true }, or remove the action.`);
    return undefined;
  },
  plan: () => true,
  execution: {
    kind: 'move',
    request: async ({ mailbox }, { id }) => mailbox.moveRequest(id, (await mailbox.folder('deleteditems')).id),
  },
  onceOnly: false,
  permission: CHANGES_MAIL,
  bareValue: 'true',
  readme: { example: 'delete: true', text: 'moves the message to Deleted Items' },
};
