import type { SandboxContext } from './context.ts';
import { GraphError } from './graph-error.ts';
import { contextUrl, project, RawBody, selectOf, type ExtensionCall } from './graph-route.ts';
import type { AttachmentInput } from './mailbox-generator.ts';
import { attachmentBytes, type StoredAttachment, type StoredMessage } from './mailbox-store.ts';

/**
 * Message attachments (fileAttachment) [graph api message-list-attachments, attachment-get; resources
 * fileattachment]: `GET …/messages/{id}/attachments` (`$select` e.g. name,contentType,size,isInline: then no
 * contentBytes), `GET …/attachments/{id}` (with contentBytes, base64), `GET …/attachments/{id}/$value` (the
 * raw bytes). Facts: docs/microsoft-notes.md, "Headers, attachments, contacts, drive, reply, request budget".
 */
export const ATTACHMENT_PROPERTIES = ['id', 'lastModifiedDateTime', 'name', 'contentType', 'size', 'isInline', 'contentId', 'contentLocation', 'contentBytes'] as const;

function attachmentJson(a: StoredAttachment): Record<string, unknown> {
  return {
    '@odata.type': '#microsoft.graph.fileAttachment', '@odata.mediaContentType': a.contentType, id: a.id,
    lastModifiedDateTime: a.lastModifiedDateTime, name: a.name, contentType: a.contentType, size: a.size, isInline: a.isInline,
    contentId: a.contentId ?? null, contentLocation: null, contentBytes: attachmentBytes(a).toString('base64'),
  };
}

export function attachmentsRoute(ctx: SandboxContext, call: ExtensionCall, m: StoredMessage, rest: string[]): unknown {
  const method = call.req.method;
  if (method !== 'GET') throw new GraphError(405, 'BadRequest', `The HTTP method '${method}' is not supported for this resource.`);
  const select = selectOf(call.query.get('$select'), ATTACHMENT_PROPERTIES, 'attachment');
  const list = m.attachments ?? [];
  if (rest.length === 0) {
    return {
      '@odata.context': contextUrl(ctx, call, `messages('${encodeURIComponent(call.immutable ? m.immutableId : m.id)}')/attachments`),
      value: list.map((a) => project(attachmentJson(a), select, ['@odata.type', '@odata.mediaContentType', 'id'])),
    };
  }
  const a = list.find((x) => x.id === rest[0]);
  if (!a || rest.length > 2 || (rest.length === 2 && rest[1] !== '$value')) {
    throw new GraphError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
  }
  if (rest[1] === '$value') return new RawBody(attachmentBytes(a), a.contentType);
  return {
    '@odata.context': contextUrl(ctx, call, `messages('${encodeURIComponent(call.immutable ? m.immutableId : m.id)}')/attachments/$entity`),
    ...project(attachmentJson(a), select, ['@odata.type', '@odata.mediaContentType', 'id']),
  };
}

/** The fileAttachments of a message in a request body (sendMail, reply): `contentBytes` (base64) required. */
export function attachmentsFromRequest(list: unknown): AttachmentInput[] {
  if (!Array.isArray(list)) return [];
  return list.map((raw, i) => {
    const a = raw as { name?: unknown; contentType?: unknown; contentBytes?: unknown; isInline?: unknown };
    if (typeof a.contentBytes !== 'string') throw new GraphError(400, 'ErrorInvalidRequest', `Attachment ${i}: contentBytes (base64) is required for a fileAttachment.`);
    return { name: String(a.name ?? 'attachment'), contentType: String(a.contentType ?? 'application/octet-stream'), content: a.contentBytes, isInline: a.isInline === true };
  });
}
