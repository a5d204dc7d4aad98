import type { Response } from 'express';
import type { SandboxContext } from './context.ts';
import type { StoredMessage } from './mailbox-store.ts';
import { GraphError } from './graph-error.ts';
import { attachmentsRoute } from './attachments.ts';
import { contactsRoute } from './contacts.ts';
import { driveRoute } from './drive.ts';
import { reply } from './reply.ts';
import { RawBody, type ExtensionCall } from './graph-route.ts';

/**
 * The Graph routes that live in their own files (attachments, reply, contacts, OneDrive), registered in
 * src/sandbox/graph.ts by one call each for routing, scopes and raw answers.
 */

export const NOT_HANDLED = Symbol('not handled');

const DRIVE_READ = ['Files.Read', 'Files.Read.All', 'Files.ReadWrite', 'Files.ReadWrite.All', 'Sites.Read.All', 'Sites.ReadWrite.All'];
const DRIVE_WRITE = ['Files.ReadWrite', 'Files.ReadWrite.All', 'Sites.ReadWrite.All'];

/**
 * The permissions (any one of them) a request on these routes needs, or undefined when it is not one of them.
 * [graph api driveitem-put-content, driveitem-createuploadsession, contact-delta, attachment-get, message-reply]
 */
export function extensionScopes(method: string, rest: string[]): string[] | undefined {
  if (rest[0] === 'drive') return method === 'GET' ? DRIVE_READ : DRIVE_WRITE;
  if (rest[0] === 'contacts' || rest[0] === 'contactFolders') return method === 'GET' ? ['Contacts.Read', 'Contacts.ReadWrite'] : ['Contacts.ReadWrite'];
  // Mail.ReadBasic leaves attachments out, so it does not reach them.
  if (rest.includes('attachments')) return method === 'GET' ? ['Mail.Read', 'Mail.ReadWrite'] : ['Mail.ReadWrite'];
  if (method === 'POST' && rest[rest.length - 1] === 'reply') return ['Mail.Send'];
  return undefined;
}

/** Serves the request when it is one of these routes; NOT_HANDLED otherwise. */
export function routeExtension(ctx: SandboxContext, call: ExtensionCall, rest: string[]): unknown {
  if (rest[0] === 'drive') return driveRoute(ctx, call, rest);
  if (rest[0] === 'contacts' || rest[0] === 'contactFolders') return contactsRoute(ctx, call, rest);
  const at = rest[0] === 'messages' ? 1 : rest[0] === 'mailFolders' && rest[2] === 'messages' ? 3 : -1;
  const action = at > 0 ? rest[at + 1] : undefined;
  if (action !== 'attachments' && action !== 'reply') return NOT_HANDLED;
  const m = messageIn(call, rest[at]!, at === 3 ? rest[1]! : undefined);
  if (action === 'attachments') return attachmentsRoute(ctx, call, m, rest.slice(at + 2));
  if (call.req.method !== 'POST' || rest.length !== at + 2) throw new GraphError(405, 'BadRequest', `The HTTP method '${call.req.method}' is not supported for this resource.`);
  return reply(ctx, call, m);
}

/** Sends a RawBody (base64 inside `$batch`, as Graph encodes binary sub-responses); false for anything else. */
export function sendRaw(res: Response, result: unknown): boolean {
  if (!(result instanceof RawBody)) return false;
  res.status(res.statusCode || 200).type(result.contentType);
  if ('headerObject' in res) res.send(result.bytes.toString('base64'));
  else res.send(result.bytes);
  return true;
}

function messageIn(call: ExtensionCall, id: string, folderRef: string | undefined): StoredMessage {
  const m = call.box.message(id);
  const folder = folderRef === undefined ? undefined : call.box.folder(folderRef);
  if (!m || (folderRef !== undefined && m.folderId !== folder?.id)) throw new GraphError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
  return m;
}
