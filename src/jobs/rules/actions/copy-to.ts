import { CHANGES_MAIL, type ActionDefinition } from '../definition.ts';
import { checkFolderPath, folderId, folderKey } from './move-to.ts';

/** `copyTo: Archive/2024`: a copy, at most once per message ever (a repeated copy would be a second copy). */
export const copyTo: ActionDefinition<string, string> = {
  check: (raw, at, t) => checkFolderPath('copyTo', raw, at, t),
  plan: (value, state) => (state.first('copyTo', folderKey(value)) ? value : undefined),
  execution: { kind: 'graph', request: async ({ mailbox }, { id }, path) => mailbox.copyRequest(id, await folderId(mailbox, path)) },
  onceOnly: true,
  permission: CHANGES_MAIL,
  bareValue: '…',
  readme: { example: 'copyTo: Archive/Receipts', text: 'files a copy, once per message' },
};
