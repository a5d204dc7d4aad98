import { describe, folderPathProblem, type Segment } from '../../../config/check-helpers.ts';
import type { Mailbox } from '../../../graph/mailbox.ts';
import { CHANGES_MAIL, lower, type ActionDefinition, type RuleCheckTools } from '../definition.ts';

/** Checks a `moveTo`/`copyTo` folder path. */
export function checkFolderPath(key: 'moveTo' | 'copyTo', raw: unknown, at: Segment[], t: RuleCheckTools): string | undefined {
  if (typeof raw !== 'string') {
    t.add(at, `${key} takes a folder path, but it is ${describe(raw)}. Fix: e.g. { ${key}: "Finance/Invoices" } or a well-known name such as archive.`);
    return undefined;
  }
  const problem = folderPathProblem(raw);
  if (problem) {
    t.add(at, `${problem}. Fix: write the path from the mailbox root with "/" between levels and no empty level, e.g. { ${key}: "Finance/Invoices" }.`);
    return undefined;
  }
  return raw;
}

/** Exchange folder names are case-insensitive. */
export function folderKey(path: string): string {
  return path.split('/').map(lower).join('/');
}

/** The destination folder of a move or copy (each missing level of the path is created). */
export async function folderId(mailbox: Mailbox, path: string): Promise<string> {
  return (await mailbox.folder(path, { create: true })).id;
}

/** `moveTo: Finance/Invoices`: a move (the last action on a message; missing levels are created). */
export const moveTo: ActionDefinition<string, string> = {
  check: (raw, at, t) => checkFolderPath('moveTo', raw, at, t),
  plan: (value) => value,
  execution: { kind: 'move', request: async ({ mailbox }, { id }, path) => mailbox.moveRequest(id, await folderId(mailbox, path)) },
  // With immutable ids (the client always asks for them) a repeated move finds the message where it went.
  onceOnly: false,
  permission: CHANGES_MAIL,
  bareValue: '…',
  readme: { example: 'moveTo: Finance/Invoices', text: 'moves the message (a path from the mailbox root or a well-known name such as `archive`; missing levels are created)' },
};
