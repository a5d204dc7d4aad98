import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import express, { type Request, type Response } from 'express';
import { decideMailboxAccess } from './access-control.ts';
import { pushLog, type SandboxContext } from './context.ts';
import { findUser, GRAPH_APP_ID, GRAPH_RESOURCE, isConsumer, SANDBOX_TENANT_ID, type SandboxUser } from './directory.ts';
import { verifyJwt, type JwtPayload } from './jwt.ts';
import { hashToken } from './state.ts';
import { textOf, type Address } from './mailbox-generator.ts';
import { attachmentInput, type Mailbox, type StoredFolder, type StoredMessage } from './mailbox-store.ts';
import { attachmentsFromRequest } from './attachments.ts';
import { BatchError, runBatch } from './batch.ts';
import { GraphError } from './graph-error.ts';
import { NOT_HANDLED, extensionScopes, routeExtension, sendRaw } from './graph-extensions.ts';
import { chargeBudget } from './budget.ts';
import { driveBodyParser } from './drive.ts';
import { internetMessageHeaders } from './message-headers.ts';
import { faultPhase, sendConnectionFault, serverError } from './faults.ts';
import { CalendarError, EVENT_PROPERTIES, calendarRoute, deliverDue, eventJson, expandEvents, ianaZone, listedEvents, isCalendarRoute, isCalendarWrite, parseWindowBound, type CalendarCall } from './calendar.ts';

/**
 * Microsoft Graph v1.0 emulation (mail): /me and /users/{id|upn}, mail
 * folders, messages, move/copy/delete, delta, sendMail. Shapes follow
 * docs/microsoft-notes.md and /work/shared/MICROSOFT.md.
 */


interface Caller {
  kind: 'user' | 'app';
  user?: SandboxUser;
  appId: string;
  scopes: string[];
  roles: string[];
}

interface GraphCall {
  req: Request;
  res: Response;
  caller: Caller;
  target: SandboxUser;
  box: Mailbox;
  base: string; // 'me' or `users/{id}`
  immutable: boolean;
  nowIso: string;
  query: URLSearchParams;
  body: unknown;
}

const MESSAGE_PROPERTIES = [
  'id', 'createdDateTime', 'lastModifiedDateTime', 'changeKey', 'categories', 'receivedDateTime', 'sentDateTime',
  'hasAttachments', 'internetMessageId', 'subject', 'bodyPreview', 'importance', 'parentFolderId', 'conversationId',
  'conversationIndex', 'isDeliveryReceiptRequested', 'isReadReceiptRequested', 'isRead', 'isDraft', 'webLink',
  'inferenceClassification', 'body', 'sender', 'from', 'toRecipients', 'ccRecipients', 'bccRecipients', 'replyTo', 'flag',
  'internetMessageHeaders', // only when selected [docs/microsoft-notes.md]
];
const FOLDER_PROPERTIES = ['id', 'displayName', 'parentFolderId', 'childFolderCount', 'unreadItemCount', 'totalItemCount', 'sizeInBytes', 'isHidden'];
const DELTA_DEFAULT_PAGE = 10;
const LIST_DEFAULT_PAGE = 10; // [graph user-list-messages]

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function recipient(a: Address) {
  return { emailAddress: { name: a.name, address: a.address } };
}

function parsePrefer(req: Request): { immutable: boolean; maxPageSize?: number; timezone?: string } {
  const header = ([] as string[]).concat(req.headers.prefer ?? []).join(',');
  const immutable = /IdType\s*=\s*"?ImmutableId"?/i.test(header);
  const max = /odata\.maxpagesize\s*=\s*(\d+)/i.exec(header);
  const tz = /outlook\.timezone\s*=\s*"([^"]+)"/i.exec(header);
  return { immutable, maxPageSize: max ? Number(max[1]) : undefined, timezone: tz?.[1] };
}

/** Minimal OData $filter: `a eq 'x'`, ge/gt/le/lt/ne, booleans, `and`, nested paths like from/emailAddress/address. */
type Getter = (path: string) => unknown;

function compileFilter(expr: string): (get: Getter) => boolean {
  const clauses = expr.split(/\s+and\s+/i).map((clause) => {
    const m = /^\s*\(?\s*([A-Za-z/]+)\s+(eq|ne|ge|gt|le|lt)\s+(.+?)\s*\)?\s*$/i.exec(clause);
    if (!m) throw new GraphError(400, 'BadRequest', `Invalid filter clause: ${clause}`);
    const [, path, op, rawValue] = m as unknown as [string, string, string, string];
    let value: unknown;
    if (/^'.*'$/.test(rawValue)) value = rawValue.slice(1, -1).replace(/''/g, "'");
    else if (rawValue === 'true' || rawValue === 'false') value = rawValue === 'true';
    else if (rawValue === 'null') value = null;
    else if (/^-?\d+(\.\d+)?$/.test(rawValue)) value = Number(rawValue);
    else if (/^\d{4}-\d{2}-\d{2}/.test(rawValue)) value = rawValue;
    else throw new GraphError(400, 'BadRequest', `Invalid filter clause: ${clause}`);
    return { path, op: op.toLowerCase(), value };
  });
  return (get) => clauses.every(({ path, op, value }) => {
    let actual = get(path);
    let expected = value;
    if (typeof actual === 'string' && typeof expected === 'string' && /DateTime$/.test(path)) {
      actual = Date.parse(actual);
      expected = Date.parse(expected);
    } else if (typeof actual === 'string' && typeof expected === 'string') {
      actual = actual.toLowerCase();
      expected = expected.toLowerCase();
    }
    const a = actual as number;
    const e = expected as number;
    switch (op) {
      case 'eq': return a === e;
      case 'ne': return a !== e;
      case 'ge': return a >= e;
      case 'gt': return a > e;
      case 'le': return a <= e;
      case 'lt': return a < e;
      default: return false;
    }
  });
}

function resolvePath(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('/')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function parseSelect(raw: string | null, allowed: string[], type: string): Set<string> | undefined {
  if (!raw) return undefined;
  const fields = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const f of fields) {
    if (!allowed.includes(f)) throw new GraphError(400, 'RequestBroker--ParseUri', `Could not find a property named '${f}' on type 'microsoft.graph.${type}'.`);
  }
  return new Set(fields);
}

export function createGraphRouter(ctx: SandboxContext): express.Router {
  const router = express.Router();
  const tokenSecret = Buffer.from(ctx.signing.kid + ':delta');

  function messageJson(m: StoredMessage, call: GraphCall, select?: Set<string>): Record<string, unknown> {
    const id = call.immutable ? m.immutableId : m.id;
    const folder = call.box.folders.get(m.folderId);
    const preview = textOf(m.bodyContentType, m.body).slice(0, 255);
    const full: Record<string, unknown> = {
      '@odata.etag': `W/"${m.changeKey}"`,
      id,
      createdDateTime: m.createdDateTime,
      lastModifiedDateTime: m.lastModifiedDateTime,
      changeKey: m.changeKey,
      categories: m.categories,
      receivedDateTime: m.receivedDateTime,
      sentDateTime: m.sentDateTime,
      hasAttachments: m.hasAttachments,
      internetMessageId: m.internetMessageId,
      subject: m.subject,
      bodyPreview: preview,
      importance: m.importance,
      parentFolderId: folder?.id ?? m.folderId,
      conversationId: m.conversationId,
      conversationIndex: Buffer.from(m.conversationId.slice(0, 22)).toString('base64'),
      isDeliveryReceiptRequested: false,
      isReadReceiptRequested: false,
      isRead: m.isRead,
      isDraft: m.isDraft,
      webLink: `https://outlook.office365.com/owa/?ItemID=${encodeURIComponent(id)}&exvsurl=1&viewmodel=ReadMessageItem`,
      inferenceClassification: 'focused',
      body: { contentType: m.bodyContentType, content: m.body },
      sender: recipient(m.from),
      from: recipient(m.from),
      toRecipients: m.to.map(recipient),
      ccRecipients: m.cc.map(recipient),
      bccRecipients: [],
      replyTo: (m.replyTo ?? []).map(recipient),
      flag: { flagStatus: m.flagStatus },
    };
    if (!select) return full;
    const out: Record<string, unknown> = { '@odata.etag': full['@odata.etag'], id };
    for (const k of select) out[k] = k === 'internetMessageHeaders' ? internetMessageHeaders(m) : full[k];
    return out;
  }

  function folderJson(f: StoredFolder, call: GraphCall, select?: Set<string>): Record<string, unknown> {
    const counts = call.box.folderCounts(f.id);
    const full: Record<string, unknown> = {
      id: f.id, displayName: f.displayName, parentFolderId: f.parentFolderId, childFolderCount: counts.children,
      unreadItemCount: counts.unread, totalItemCount: counts.total, sizeInBytes: counts.total * 4096, isHidden: f.isHidden,
    };
    if (!select) return full;
    const out: Record<string, unknown> = { id: f.id };
    for (const k of select) out[k] = full[k];
    return out;
  }

  const ctxUrl = (call: GraphCall, suffix: string) => `${ctx.origin}/v1.0/$metadata#users('${encodeURIComponent(call.target.oid)}')/${suffix}`;

  function pageOf<T>(call: GraphCall, items: T[], pathForNext: string): { page: T[]; nextLink?: string } {
    const topRaw = call.query.get('$top');
    const skipRaw = call.query.get('$skip');
    const top = topRaw === null ? LIST_DEFAULT_PAGE : Number(topRaw);
    const skip = skipRaw === null ? 0 : Number(skipRaw);
    if (!Number.isInteger(top) || top < 0) throw new GraphError(400, 'BadRequest', `Invalid value '${topRaw}' for $top query option found.`);
    if (top > 1000) throw new GraphError(400, 'ErrorInvalidRequest', 'The value of $top must be between 1 and 1000.');
    if (!Number.isInteger(skip) || skip < 0) throw new GraphError(400, 'BadRequest', `Invalid value '${skipRaw}' for $skip query option found.`);
    const page = items.slice(skip, skip + top);
    if (skip + top >= items.length) return { page };
    const q = new URLSearchParams(call.query);
    q.set('$top', String(top));
    q.set('$skip', String(skip + top));
    return { page, nextLink: `${ctx.origin}/v1.0/${pathForNext}?${q.toString().replace(/%24/g, '$')}` };
  }

  function findFolder(call: GraphCall, idOrName: string): StoredFolder {
    const f = call.box.folder(idOrName);
    if (!f) throw new GraphError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
    return f;
  }

  function findMessage(call: GraphCall, id: string, folder?: StoredFolder): StoredMessage {
    const m = call.box.message(id);
    if (!m || (folder && m.folderId !== folder.id)) throw new GraphError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
    return m;
  }

  function listMessages(call: GraphCall, source: StoredMessage[], pathForNext: string) {
    const select = parseSelect(call.query.get('$select'), MESSAGE_PROPERTIES, 'message');
    let items = source;
    const filter = call.query.get('$filter');
    if (filter) {
      const test = compileFilter(filter);
      items = items.filter((m) => test((p) => resolvePath(messageJson(m, call), p)));
    }
    const orderby = (call.query.get('$orderby') ?? 'receivedDateTime desc').trim();
    const om = /^(receivedDateTime|sentDateTime|lastModifiedDateTime|createdDateTime|subject)(\s+(asc|desc))?$/i.exec(orderby);
    if (!om) throw new GraphError(400, 'BadRequest', `The $orderby expression '${orderby}' is not supported.`);
    const key = om[1] as keyof StoredMessage;
    const dir = (om[3] ?? 'asc').toLowerCase() === 'desc' ? -1 : 1;
    items = [...items].sort((a, b) => {
      const c = String(a[key]).localeCompare(String(b[key]));
      return c !== 0 ? c * dir : a.seq - b.seq;
    });
    const { page, nextLink } = pageOf(call, items, pathForNext);
    const body: Record<string, unknown> = { '@odata.context': ctxUrl(call, 'messages') };
    body.value = page.map((m) => messageJson(m, call, select));
    if (nextLink) body['@odata.nextLink'] = nextLink;
    return body;
  }

  function listFolders(call: GraphCall, parent: StoredFolder, pathForNext: string) {
    const select = parseSelect(call.query.get('$select'), FOLDER_PROPERTIES, 'mailFolder');
    const includeHidden = call.query.get('includeHiddenFolders') === 'true';
    let items = call.box.childFolders(parent.id).filter((f) => includeHidden || !f.isHidden);
    const filter = call.query.get('$filter');
    if (filter) {
      const test = compileFilter(filter);
      items = items.filter((f) => test((p) => resolvePath(folderJson(f, call), p)));
    }
    items.sort((a, b) => a.displayName.localeCompare(b.displayName));
    const { page, nextLink } = pageOf(call, items, pathForNext);
    const body: Record<string, unknown> = { '@odata.context': ctxUrl(call, 'mailFolders') };
    body.value = page.map((f) => folderJson(f, call, select));
    if (nextLink) body['@odata.nextLink'] = nextLink;
    return body;
  }

  function createFolder(call: GraphCall, parent: StoredFolder) {
    const b = call.body as { displayName?: unknown; isHidden?: unknown } | undefined;
    if (!b || typeof b.displayName !== 'string' || !b.displayName.trim()) {
      throw new GraphError(400, 'ErrorInvalidRequest', 'The request is invalid: displayName is required.');
    }
    const name = b.displayName;
    if (call.box.childFolders(parent.id).some((f) => f.displayName.toLowerCase() === name.toLowerCase())) {
      throw new GraphError(409, 'ErrorFolderExists', 'A folder with the specified name already exists.');
    }
    const f = call.box.createFolder(parent.id, name, b.isHidden === true);
    call.res.status(201);
    return { '@odata.context': ctxUrl(call, 'mailFolders/$entity'), ...folderJson(f, call) };
  }

  function patchMessage(call: GraphCall, m: StoredMessage) {
    const b = call.body;
    if (!b || typeof b !== 'object' || Array.isArray(b)) throw new GraphError(400, 'BadRequest', 'Empty Payload. JSON content expected.');
    const patch = b as Record<string, unknown>;
    const bad = (p: string) => new GraphError(400, 'BadRequest', `Cannot convert the literal '${String(patch[p])}' to the expected type for property '${p}'.`);
    if ('isRead' in patch && typeof patch.isRead !== 'boolean') throw bad('isRead');
    if ('importance' in patch && !['low', 'normal', 'high'].includes(String(patch.importance))) throw bad('importance');
    if ('categories' in patch && (!Array.isArray(patch.categories) || !patch.categories.every((c) => typeof c === 'string'))) throw bad('categories');
    if ('flag' in patch) {
      const fs = (patch.flag as { flagStatus?: unknown } | null)?.flagStatus;
      if (!['notFlagged', 'flagged', 'complete'].includes(String(fs))) throw bad('flag');
    }
    if (!m.isDraft && ('subject' in patch || 'body' in patch || 'toRecipients' in patch)) {
      throw new GraphError(400, 'ErrorInvalidPropertyUpdateSentMessage', 'Update operation is invalid for property of a sent message.');
    }
    if (typeof patch.isRead === 'boolean') m.isRead = patch.isRead;
    if (typeof patch.importance === 'string') m.importance = patch.importance as StoredMessage['importance'];
    if (Array.isArray(patch.categories)) m.categories = patch.categories as string[];
    if (patch.flag) m.flagStatus = (patch.flag as { flagStatus: StoredMessage['flagStatus'] }).flagStatus;
    if (typeof patch.subject === 'string') m.subject = patch.subject;
    call.box.touch(m, call.nowIso);
    return { '@odata.context': ctxUrl(call, 'messages/$entity'), ...messageJson(m, call) };
  }

  function moveOrCopy(call: GraphCall, m: StoredMessage, op: 'move' | 'copy') {
    const b = call.body as { destinationId?: unknown } | undefined;
    if (!b || typeof b.destinationId !== 'string') throw new GraphError(400, 'ErrorInvalidRequest', "The request is invalid: 'destinationId' is required.");
    const dest = findFolder(call, b.destinationId);
    const result = op === 'move' ? call.box.moveMessage(m, dest.id, call.nowIso) : call.box.copyMessage(m, dest.id, call.nowIso);
    call.res.status(201);
    return { '@odata.context': ctxUrl(call, 'messages/$entity'), ...messageJson(result, call) };
  }

  function sendMail(call: GraphCall) {
    const b = call.body as { message?: Record<string, unknown>; saveToSentItems?: unknown } | undefined;
    const msg = b?.message;
    if (!msg || typeof msg !== 'object') throw new GraphError(400, 'ErrorInvalidRequest', "The request is invalid: 'message' is required.");
    const addr = (list: unknown): Address[] =>
      Array.isArray(list)
        ? list.map((r) => {
          const e = (r as { emailAddress?: { address?: unknown; name?: unknown } }).emailAddress;
          return { address: String(e?.address ?? ''), name: String(e?.name ?? e?.address ?? '') };
        })
        : [];
    const to = addr(msg.toRecipients);
    const cc = addr(msg.ccRecipients);
    const all = [...to, ...cc, ...addr(msg.bccRecipients)];
    if (all.length === 0 || all.some((a) => !/^[^@\s]+@[^@\s]+$/.test(a.address))) {
      throw new GraphError(400, 'ErrorInvalidRecipients', 'At least one recipient is not valid., A message can\'t be sent because it contains no recipients.');
    }
    const body = msg.body as { contentType?: unknown; content?: unknown } | undefined;
    const contentType = String(body?.contentType ?? 'text').toLowerCase() === 'html' ? 'html' : 'text';
    const content = String(body?.content ?? '');
    const me: Address = { name: call.target.displayName, address: call.target.upn };
    const base = {
      subject: String(msg.subject ?? ''), bodyContentType: contentType as 'html' | 'text', body: content, from: me, to, cc,
      receivedDateTime: call.nowIso, sentDateTime: call.nowIso, importance: (['low', 'high'].includes(String(msg.importance)) ? msg.importance : 'normal') as StoredMessage['importance'],
      hasAttachments: Array.isArray(msg.attachments) && msg.attachments.length > 0, categories: [], flagStatus: 'notFlagged' as const,
      attachments: attachmentsFromRequest(msg.attachments),
    };
    if (b?.saveToSentItems !== false) call.box.addMessage({ ...base, isRead: true }, call.box.folder('sentitems')!.id, call.nowIso);
    for (const a of all) {
      const rcpt = findUser(a.address);
      const box = rcpt && ctx.state.mailbox(rcpt.upn);
      if (box) box.addMessage({ ...base, isRead: false }, box.folder('inbox')!.id, call.nowIso);
    }
    call.res.status(202);
    return undefined;
  }

  /** POST …/messages/{id}/forward {comment, toRecipients} → 202; a copy "FW: …" lands in Sent Items. */
  function forward(call: GraphCall, m: StoredMessage) {
    const b = call.body as { comment?: unknown; toRecipients?: unknown } | undefined;
    const to = Array.isArray(b?.toRecipients)
      ? b.toRecipients.map((r) => {
        const e = (r as { emailAddress?: { address?: unknown; name?: unknown } }).emailAddress;
        return { address: String(e?.address ?? ''), name: String(e?.name ?? e?.address ?? '') };
      })
      : [];
    if (to.length === 0 || to.some((a) => !/^[^@\s]+@[^@\s]+$/.test(a.address))) {
      throw new GraphError(400, 'ErrorInvalidRecipients', 'At least one recipient is not valid., A message can\'t be sent because it contains no recipients.');
    }
    const comment = typeof b?.comment === 'string' ? b.comment : '';
    const me: Address = { name: call.target.displayName, address: call.target.upn };
    const base = {
      subject: `FW: ${m.subject}`, bodyContentType: m.bodyContentType, body: `${comment}${comment ? '\n\n' : ''}${m.body}`, from: me, to, cc: [],
      receivedDateTime: call.nowIso, sentDateTime: call.nowIso, importance: m.importance, hasAttachments: m.hasAttachments, categories: [], flagStatus: 'notFlagged' as const,
      attachments: m.attachments?.map(attachmentInput), // a forward carries the original's files
    };
    call.box.addMessage({ ...base, isRead: true }, call.box.folder('sentitems')!.id, call.nowIso);
    for (const a of to) {
      const rcpt = findUser(a.address);
      const box = rcpt && ctx.state.mailbox(rcpt.upn);
      if (box) box.addMessage({ ...base, isRead: false }, box.folder('inbox')!.id, call.nowIso);
    }
    call.res.status(202);
    return undefined;
  }

  // ---------- delta ----------
  interface DeltaState {
    f: string; // folder id
    w: number; // watermark: changes after this seq
    u?: number; // upper bound of the current round
    c?: number; // cursor (last seq returned) within the round
    i: boolean; // initial round
    s?: string; // $select
    flt?: string; // $filter
    ct?: string; // changeType
    g: number; // delta generation (admin can expire all)
  }

  function encodeDelta(st: DeltaState): string {
    const json = Buffer.from(JSON.stringify(st)).toString('base64url');
    const mac = createHmac('sha256', tokenSecret).update(json).digest('base64url').slice(0, 16);
    return `${json}.${mac}`;
  }

  function decodeDelta(token: string): DeltaState {
    const [json, mac] = token.split('.');
    const expected = json ? createHmac('sha256', tokenSecret).update(json).digest('base64url').slice(0, 16) : '';
    if (!json || !mac || mac.length !== expected.length || !timingSafeEqual(Buffer.from(mac), Buffer.from(expected))) {
      throw new GraphError(400, 'BadRequest', 'The sync state is invalid or corrupt.');
    }
    return JSON.parse(Buffer.from(json, 'base64url').toString('utf8')) as DeltaState;
  }

  function delta(call: GraphCall, folderRef: string) {
    const prefer = parsePrefer(call.req);
    const pageSize = Math.max(1, Math.min(prefer.maxPageSize ?? DELTA_DEFAULT_PAGE, 1000));
    const skip = call.query.get('$skiptoken');
    const dtok = call.query.get('$deltatoken');
    const generation = ctx.state.data.deltaGeneration ?? 0;
    let st: DeltaState;
    if (skip || dtok) {
      st = decodeDelta((skip ?? dtok)!);
      if (st.g !== generation) throw new GraphError(410, 'SyncStateNotFound', 'The sync state generation is invalid or has expired. Please restart the sync.');
      if (dtok) st = { ...st, i: false, u: undefined, c: undefined };
    } else {
      const folder = findFolder(call, folderRef);
      const ct = call.query.get('changeType') ?? undefined;
      if (ct && !['created', 'updated', 'deleted'].includes(ct)) throw new GraphError(400, 'BadRequest', `Invalid changeType '${ct}'.`);
      parseSelect(call.query.get('$select'), MESSAGE_PROPERTIES, 'message');
      const flt = call.query.get('$filter') ?? undefined;
      if (flt && !/^\s*receivedDateTime\s+(ge|gt)\s+\S+\s*$/i.test(flt)) {
        throw new GraphError(400, 'ErrorInvalidUrlQueryFilter', 'The query filter contains one or more invalid nodes.');
      }
      st = { f: folder.id, w: 0, i: true, s: call.query.get('$select') ?? undefined, flt, ct, g: generation };
    }
    const folder = call.box.folders.get(st.f);
    if (!folder) throw new GraphError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
    const upper = st.u ?? call.box.seq;
    const cursor = st.c ?? (st.i ? 0 : st.w);
    const select = st.s ? parseSelect(st.s, MESSAGE_PROPERTIES, 'message') : undefined;
    const test = st.flt ? compileFilter(st.flt) : undefined;
    type Item = { seq: number; msg?: StoredMessage; removed?: Record<string, unknown> };
    const items: Item[] = [];
    for (const m of call.box.messagesIn(folder.id)) {
      if (m.seq <= cursor || m.seq > upper) continue;
      if (test && !test((p) => resolvePath(messageJson(m, call), p))) continue;
      if (!st.i && st.ct === 'created' && m.folderSeq <= st.w) continue;
      if (!st.i && st.ct === 'updated' && m.folderSeq > st.w) continue;
      if (!st.i && st.ct === 'deleted') continue;
      items.push({ seq: m.seq, msg: m });
    }
    if (!st.i && (!st.ct || st.ct === 'deleted')) {
      for (const t of call.box.tombstonesIn(folder.id, cursor, upper)) {
        items.push({
          seq: t.seq,
          removed: { '@odata.type': '#microsoft.graph.message', id: call.immutable ? t.immutableId : t.id, '@removed': { reason: t.reason } },
        });
      }
    }
    items.sort((a, b) => a.seq - b.seq);
    const page = items.slice(0, pageSize);
    const value = page.map((it) => it.removed ?? { '@odata.type': '#microsoft.graph.message', ...messageJson(it.msg!, call, select) });
    const base = `${ctx.origin}/v1.0/${call.base}/mailFolders('${encodeURIComponent(folder.id)}')/messages/delta`;
    const body: Record<string, unknown> = { '@odata.context': `${ctx.origin}/v1.0/$metadata#Collection(message)` };
    if (items.length > pageSize) {
      const last = page[page.length - 1]!;
      body['@odata.nextLink'] = `${base}?$skiptoken=${encodeDelta({ ...st, u: upper, c: last.seq })}`;
    } else {
      body['@odata.deltaLink'] = `${base}?$deltatoken=${encodeDelta({ ...st, w: upper, u: undefined, c: undefined, i: false })}`;
    }
    body.value = value;
    const applied = [];
    if (prefer.maxPageSize !== undefined) applied.push(`odata.maxpagesize=${pageSize}`);
    if (call.immutable) applied.push('IdType="ImmutableId"');
    if (applied.length) call.res.setHeader('Preference-Applied', applied.join(','));
    return body;
  }

  // ---------- user objects ----------
  function userJson(u: SandboxUser) {
    return {
      businessPhones: [], displayName: u.displayName, givenName: u.givenName, jobTitle: u.jobTitle, mail: u.upn,
      mobilePhone: null, officeLocation: null, preferredLanguage: 'en-US', surname: u.surname, userPrincipalName: u.upn, id: u.oid,
    };
  }

  function mailboxSettings(call: GraphCall) {
    return {
      '@odata.context': ctxUrl(call, 'mailboxSettings'),
      archiveFolder: call.box.folder('archive')!.id,
      timeZone: call.target.timeZone,
      delegateMeetingMessageDeliveryOptions: 'sendToDelegateOnly',
      dateFormat: 'dd.MM.yyyy',
      timeFormat: 'HH:mm',
      userPurpose: 'user',
      automaticRepliesSetting: {
        status: 'disabled', externalAudience: 'all', internalReplyMessage: '', externalReplyMessage: '',
        scheduledStartDateTime: { dateTime: '2026-01-01T00:00:00.0000000', timeZone: 'UTC' },
        scheduledEndDateTime: { dateTime: '2026-01-02T00:00:00.0000000', timeZone: 'UTC' },
      },
      language: { locale: 'en-US', displayName: 'English (United States)' },
      workingHours: {
        daysOfWeek: ['monday', 'tuesday', 'wednesday', 'thursday', 'friday'], startTime: '08:00:00.0000000', endTime: '17:00:00.0000000',
        timeZone: { name: call.target.timeZone },
      },
    };
  }

  // ---------- calendar ----------
  /** The zone of returned start/end: `Prefer: outlook.timezone` (Windows or IANA name), else UTC. */
  function eventZone(call: GraphCall): { name: string; iana: string } {
    const asked = parsePrefer(call.req).timezone;
    const iana = asked ? ianaZone(asked) : undefined;
    if (asked && iana) {
      call.res.setHeader('Preference-Applied', `outlook.timezone="${asked}"`);
      return { name: asked, iana };
    }
    return { name: 'UTC', iana: 'UTC' };
  }

  function listEvents(call: GraphCall, path: string, window: boolean) {
    let from = -Infinity;
    let to = Infinity;
    if (window) {
      const s = parseWindowBound(call.query.get('startDateTime'));
      const e = parseWindowBound(call.query.get('endDateTime'));
      if (s === undefined || e === undefined) {
        throw new GraphError(400, 'ErrorInvalidParameter', 'This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.');
      }
      from = s;
      to = e;
    }
    const select = parseSelect(call.query.get('$select'), EVENT_PROPERTIES, 'event');
    const zone = eventZone(call);
    // A calendar view shows occurrences; /events lists single events and series masters [user-list-events].
    const items = (window ? expandEvents(call.box.allEvents()) : listedEvents(call.box.allEvents())).filter((ev) => Date.parse(ev.start) < to && Date.parse(ev.end) > from);
    const { page, nextLink } = pageOf(call, items, path);
    const value = page.map((ev) => {
      const full = eventJson(ev, zone);
      if (!select) return full;
      const out: Record<string, unknown> = { '@odata.etag': full['@odata.etag'], id: ev.id };
      for (const k of select) out[k] = full[k];
      return out;
    });
    const body: Record<string, unknown> = { '@odata.context': ctxUrl(call, 'events'), value };
    if (nextLink) body['@odata.nextLink'] = nextLink;
    return body;
  }

  /** What src/sandbox/calendar.ts needs of a request (calendarView delta, event responses and updates). */
  function calendarCall(call: GraphCall): CalendarCall {
    return {
      box: call.box, method: call.req.method, query: call.query, body: call.body, maxPageSize: parsePrefer(call.req).maxPageSize, zone: eventZone(call),
      linkBase: `${ctx.origin}/v1.0/${call.base}`, contextUrl: (suffix) => ctxUrl(call, suffix), generation: ctx.state.data.deltaGeneration ?? 0,
      secret: Buffer.from(ctx.signing.kid + ':calendar-delta'), now: ctx.now(), setStatus: (status) => call.res.status(status),
    };
  }

  // ---------- dispatch ----------
  function dispatch(call: GraphCall, rest: string[]): unknown {
    const method = call.req.method;
    const [a, b, c, d, e] = rest;
    const len = rest.length;
    const path = `${call.base}/${rest.join('/')}`.replace(/\/$/, '');
    const nope = () => new GraphError(405, 'BadRequest', `The HTTP method '${method}' is not supported for this resource.`);
    const extension = routeExtension(ctx, call, rest); // attachments, reply, contacts, drive
    if (extension !== NOT_HANDLED) return extension;
    if (len === 0) {
      if (method !== 'GET') throw nope();
      return { '@odata.context': `${ctx.origin}/v1.0/$metadata#users/$entity`, ...userJson(call.target) };
    }
    if (a === 'mailboxSettings' && len === 1) {
      if (method !== 'GET') throw nope();
      // Observed for Outlook.com mailboxes whatever the scopes (docs/microsoft-notes.md "Personal accounts").
      if (isConsumer(call.target)) throw new GraphError(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
      return mailboxSettings(call);
    }
    if ((a === 'calendarView' && len === 1) || (a === 'calendar' && b === 'calendarView' && len === 2)) {
      if (method !== 'GET') throw nope();
      ctx.state.topUpCalendars(); // a sandbox running for weeks keeps a sample week ahead
      deliverDue(call.box, ctx.now());
      return listEvents(call, path, true);
    }
    if ((a === 'events' && len === 1) || (a === 'calendar' && b === 'events' && len === 2)) {
      if (method !== 'GET') throw nope();
      return listEvents(call, path, false);
    }
    if (isCalendarRoute(rest)) return calendarRoute(calendarCall(call), rest);
    if (a === 'sendMail' && len === 1) {
      if (method !== 'POST') throw nope();
      return sendMail(call);
    }
    if (a === 'mailFolders') {
      if (len === 1) {
        if (method === 'GET') return listFolders(call, call.box.folders.get(call.box.rootId)!, path);
        if (method === 'POST') return createFolder(call, call.box.folders.get(call.box.rootId)!);
        throw nope();
      }
      if (b === 'delta' && len === 2) throw new GraphError(501, 'NotImplemented', 'mailFolders/delta is not implemented by the sandbox.');
      const folder = len >= 2 && !(c === 'messages' && d === 'delta') ? findFolder(call, b!) : undefined;
      if (len === 2) {
        if (method !== 'GET') throw nope();
        const select = parseSelect(call.query.get('$select'), FOLDER_PROPERTIES, 'mailFolder');
        return { '@odata.context': ctxUrl(call, 'mailFolders/$entity'), ...folderJson(folder!, call, select) };
      }
      if (c === 'childFolders' && len === 3) {
        if (method === 'GET') return listFolders(call, folder!, path);
        if (method === 'POST') return createFolder(call, folder!);
        throw nope();
      }
      if (c === 'messages') {
        if (d === 'delta' && len === 4) {
          if (method !== 'GET') throw nope();
          return delta(call, b!);
        }
        if (len === 3) {
          if (method !== 'GET') throw nope();
          return listMessages(call, call.box.messagesIn(folder!.id), path);
        }
        return messageRoute(call, rest.slice(3), folder, d!, e);
      }
    }
    if (a === 'messages') {
      if (len === 1) {
        if (method !== 'GET') throw nope();
        return listMessages(call, call.box.allMessages(), path);
      }
      return messageRoute(call, rest.slice(1), undefined, b!, c);
    }
    throw new GraphError(400, 'BadRequest', `Resource not found for the segment '${rest[rest.length - 1] ?? a}'.`);
  }

  function messageRoute(call: GraphCall, rest: string[], folder: StoredFolder | undefined, id: string, action: string | undefined): unknown {
    const method = call.req.method;
    if (rest.length > 2) throw new GraphError(400, 'BadRequest', `Resource not found for the segment '${rest[2]}'.`);
    const m = findMessage(call, id, folder);
    if (action === undefined) {
      if (method === 'GET') {
        const select = parseSelect(call.query.get('$select'), MESSAGE_PROPERTIES, 'message');
        return { '@odata.context': ctxUrl(call, 'messages/$entity'), ...messageJson(m, call, select) };
      }
      if (method === 'PATCH') return patchMessage(call, m);
      if (method === 'DELETE') {
        call.box.deleteMessage(m);
        call.res.status(204);
        return undefined;
      }
      throw new GraphError(405, 'BadRequest', `The HTTP method '${method}' is not supported for this resource.`);
    }
    if ((action === 'move' || action === 'copy') && method === 'POST') return moveOrCopy(call, m, action);
    if (action === 'forward' && method === 'POST') return forward(call, m);
    throw new GraphError(400, 'BadRequest', `Resource not found for the segment '${action}'.`);
  }

  // ---------- auth ----------
  function authenticate(req: Request): Caller {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(header);
    if (!m) throw new GraphError(401, 'InvalidAuthenticationToken', 'Access token is empty.');
    const token = m[1]!.trim();
    if (!token.includes('.')) return opaqueCaller(token);
    const check = verifyJwt(token, ctx.signing.publicKeyPem);
    if (!check.ok) {
      throw new GraphError(401, 'InvalidAuthenticationToken',
        check.reason === 'malformed' ? 'IDX14100: JWT is not well formed, there are no dots (.).' : 'Access token validation failure.');
    }
    const p: JwtPayload = check.payload;
    if (p.aud !== GRAPH_RESOURCE && p.aud !== GRAPH_APP_ID) {
      throw new GraphError(401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.');
    }
    const nowS = ctx.now() / 1000;
    if (typeof p.exp !== 'number' || p.exp < nowS - 300) throw new GraphError(401, 'InvalidAuthenticationToken', 'Lifetime validation failed, the token is expired.');
    if (typeof p.nbf === 'number' && p.nbf > nowS + 300) throw new GraphError(401, 'InvalidAuthenticationToken', 'Lifetime validation failed, the token is not yet valid.');
    if (p.tid !== SANDBOX_TENANT_ID) throw new GraphError(401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid issuer.');
    if (p.idtyp === 'app') {
      return { kind: 'app', appId: String(p.appid), scopes: [], roles: Array.isArray(p.roles) ? (p.roles as string[]) : [] };
    }
    const user = findUser(String(p.oid));
    if (!user) throw new GraphError(401, 'InvalidAuthenticationToken', 'Access token validation failure.');
    return { kind: 'user', user, appId: String(p.appid), scopes: String(p.scp ?? '').split(' ').filter(Boolean), roles: [] };
  }

  /** A personal account's access token is not a JWT: it is looked up (src/sandbox/entra.ts opaqueAccessToken). */
  function opaqueCaller(token: string): Caller {
    const rec = ctx.state.data.opaqueAccessTokens?.[hashToken(token)];
    const user = rec && findUser(rec.oid);
    if (!rec || !user) throw new GraphError(401, 'InvalidAuthenticationToken', 'IDX14100: JWT is not well formed, there are no dots (.).');
    if (rec.exp < ctx.now() / 1000 - 300) throw new GraphError(401, 'InvalidAuthenticationToken', 'Lifetime validation failed, the token is expired.');
    return { kind: 'user', user, appId: rec.appId, scopes: [...rec.scopes], roles: [] };
  }

  function authorizeScopes(call: GraphCall, rest: string[]): void {
    const method = call.req.method;
    const isMail = rest[0] === 'messages' || rest[0] === 'mailFolders';
    const have = call.caller.kind === 'user' ? call.caller.scopes : call.caller.roles;
    const need: string[] = [];
    const extension = extensionScopes(method, rest);
    if (extension) need.push(...extension);
    else if (rest.length === 0) need.push('User.Read', 'User.ReadBasic.All', 'User.Read.All', 'Mail.Read', 'Mail.ReadWrite');
    else if (rest[0] === 'mailboxSettings') need.push('MailboxSettings.Read', 'MailboxSettings.ReadWrite');
    else if (rest[0] === 'sendMail') need.push('Mail.Send');
    // forward, reply and replyAll need Mail.Send alone, not Mail.ReadWrite [graph api message-forward, message-reply].
    else if (rest[0] === 'messages' && method === 'POST' && ['forward', 'reply', 'replyAll'].includes(rest[2] ?? '')) need.push('Mail.Send');
    else if (isCalendarWrite(method, rest)) need.push('Calendars.ReadWrite');
    else if (rest[0] === 'calendarView' || rest[0] === 'calendar' || rest[0] === 'events') need.push('Calendars.Read', 'Calendars.ReadWrite');
    else if (isMail && method === 'GET') need.push('Mail.Read', 'Mail.ReadWrite', 'Mail.ReadBasic');
    else if (isMail) need.push('Mail.ReadWrite');
    if (need.length && !need.some((s) => have.includes(s))) {
      throw new GraphError(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
    }
  }

  router.use(driveBodyParser(ctx));
  router.use(express.text({ type: () => true, limit: '4mb' }));

  /**
   * Serves one Graph request: a real one from express, or a `$batch` sub-request (`inBatch` set) with a
   * request-like object whose response is captured. Both take the mailbox's concurrency slot and can be faulted.
   */
  async function serve(req: Request, res: Response, inBatch?: string): Promise<void> {
    const requestId = randomUUID();
    const clientRequestId = (typeof req.headers['client-request-id'] === 'string' && req.headers['client-request-id']) || requestId;
    const startedAt = ctx.now();
    res.setHeader('request-id', requestId);
    res.setHeader('client-request-id', clientRequestId);
    res.setHeader('x-ms-ags-diagnostic', JSON.stringify({ ServerInfo: { DataCenter: 'Sandbox', Slice: 'E', Ring: '5', ScaleUnit: '000', RoleInstance: 'SANDBOX' } }));
    res.setHeader('Strict-Transport-Security', 'max-age=31536000');
    res.setHeader('Cache-Control', 'no-cache');
    let upn: string | undefined;
    let slotHeld: string | undefined;
    const sendError = (e: GraphError) => {
      for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
      if (e.status === 401) {
        res.setHeader('WWW-Authenticate', `Bearer realm="", authorization_uri="${ctx.origin}/common/oauth2/authorize", client_id="${GRAPH_APP_ID}"`);
      }
      res.status(e.status).type('application/json').send(JSON.stringify({
        error: { code: e.code, message: e.message, innerError: { date: isoSeconds(ctx.now()), 'request-id': requestId, 'client-request-id': clientRequestId } },
      }));
    };
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      if (slotHeld) {
        const n = (ctx.inFlight.get(slotHeld) ?? 1) - 1;
        if (n <= 0) ctx.inFlight.delete(slotHeld);
        else ctx.inFlight.set(slotHeld, n);
      }
      pushLog(ctx.graphLog, { at: new Date(startedAt).toISOString(), method: req.method, path: req.originalUrl, status: res.statusCode, upn, requestId, ...(inBatch ? { inBatch } : {}) });
    };
    // 'close' also fires when the client goes away mid-request, so the slot is never leaked.
    res.on('finish', release);
    res.on('close', release);
    try {
      const fault = ctx.faults.take(req.method, req.originalUrl, inBatch !== undefined);
      // A fault 'after' lets the request be carried out, then loses its answer (faults.ts).
      const lateFault = fault && faultPhase(fault) === 'after' ? fault : undefined;
      const answer = (status: number, text: string | undefined) => {
        const lost = lateFault && serverError(lateFault);
        if (lost) return sendError(new GraphError(lost.status, lost.code, lost.message, lost.headers));
        if (lateFault && sendConnectionFault(lateFault, req, res, text)) return release();
        if (text === undefined) return res.end();
        res.status(status).type('application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8').send(text);
      };
      if (fault && !lateFault) {
        if (fault.kind === 'reset') release();
        if (sendConnectionFault(fault, req, res)) return;
        const refused = serverError(fault);
        if (refused) throw new GraphError(refused.status, refused.code, refused.message, refused.headers);
      }
      if (fault?.kind === 'latency') await sleep(fault.latencyMs ?? 0);
      if (fault?.kind === '429') throw new GraphError(429, 'TooManyRequests', 'Too many requests.', { 'Retry-After': fault.retryAfter ?? '1' });
      const caller = authenticate(req);
      const rawSegments = req.path.split('/').filter(Boolean).flatMap((seg) => {
        const fm = /^([A-Za-z]+)\('(.*)'\)$/.exec(decodeURIComponent(seg));
        return fm ? [fm[1]!, fm[2]!] : [decodeURIComponent(seg)];
      });
      if (rawSegments.length === 1 && rawSegments[0] === '$batch' && req.method === 'POST') {
        if (inBatch) throw new GraphError(400, 'BadRequest', 'A $batch request cannot contain another $batch request.');
        const text = typeof req.body === 'string' ? req.body : '';
        // One round trip for the whole batch; its sub-requests then take their own service time below.
        if (ctx.latencyMs > 0) await sleep(ctx.latencyMs);
        const out = await runBatch(text, req, (subReq, subRes, id) => serve(subReq, subRes, `${requestId}#${id}`));
        answer(200, JSON.stringify(out));
        return;
      }
      let target: SandboxUser | undefined;
      let base: string;
      let rest: string[];
      if (rawSegments[0] === 'me') {
        if (caller.kind !== 'user') throw new GraphError(400, 'BadRequest', '/me request is only valid with delegated authentication flow.');
        target = caller.user!;
        base = 'me';
        rest = rawSegments.slice(1);
      } else if (rawSegments[0] === 'users' && rawSegments[1]) {
        target = findUser(rawSegments[1]);
        // A personal account is in no organisation: an app's token (or another tenant's user) does not see it.
        if (target && isConsumer(target) && caller.user?.oid !== target.oid) target = undefined;
        if (!target) {
          if (rawSegments.length === 2) throw new GraphError(404, 'Request_ResourceNotFound', `Resource '${rawSegments[1]}' does not exist or one of its queried reference-property objects are not present.`);
          throw new GraphError(404, 'ErrorInvalidUser', `The requested user '${rawSegments[1]}' is invalid.`);
        }
        if (caller.kind === 'user' && caller.user!.oid !== target.oid && rawSegments.length > 2) {
          throw new GraphError(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
        }
        if (caller.kind === 'app' && rawSegments.length > 2) {
          // ApplicationAccessPolicy and RBAC for Applications (src/sandbox/access-control.ts).
          const decision = decideMailboxAccess(ctx, caller.appId, caller.roles, target.upn);
          if (decision.deny) throw new GraphError(403, decision.deny.code, decision.deny.message);
          caller.roles = decision.roles;
        }
        base = `users/${encodeURIComponent(rawSegments[1])}`;
        rest = rawSegments.slice(2);
      } else {
        throw new GraphError(400, 'BadRequest', `Resource not found for the segment '${rawSegments[0] ?? ''}'.`);
      }
      upn = target.upn;
      const box = ctx.state.mailbox(target.upn);
      if (!box) throw new GraphError(404, 'MailboxNotEnabledForRESTAPI', 'The mailbox is either inactive, soft-deleted, or is hosted on-premise.');
      // Outlook allows 4 concurrent requests per app and mailbox [graph throttling-limits]; batch sub-requests count too.
      chargeBudget(ctx, caller.appId, target.upn, rest); // 10,000 per 10 min per app and mailbox (budget.ts)
      const inFlight = ctx.inFlight.get(target.upn) ?? 0;
      if (inFlight >= ctx.maxConcurrentPerMailbox) {
        throw new GraphError(429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.', { 'Retry-After': '1' });
      }
      ctx.inFlight.set(target.upn, inFlight + 1);
      slotHeld = target.upn;
      const delay = inBatch === undefined ? ctx.latencyMs : ctx.subRequestMs;
      if (delay > 0) await sleep(delay);
      let body: unknown;
      const text = typeof req.body === 'string' ? req.body : '';
      if (['POST', 'PATCH', 'PUT'].includes(req.method) && text.trim()) {
        try {
          body = JSON.parse(text);
        } catch {
          throw new GraphError(400, 'BadRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.');
        }
      }
      const query = new URLSearchParams(req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '');
      const prefer = parsePrefer(req);
      const call: GraphCall = {
        req, res, caller, target, box, base, immutable: prefer.immutable, nowIso: isoSeconds(ctx.now()), query, body,
      };
      authorizeScopes(call, rest);
      const result = dispatch(call, rest);
      if (prefer.immutable && !res.getHeader('Preference-Applied')) res.setHeader('Preference-Applied', 'IdType="ImmutableId"');
      if (!sendRaw(res, result)) answer(res.statusCode || 200, result === undefined ? undefined : JSON.stringify(result));
    } catch (e) {
      if (e instanceof GraphError) return sendError(e);
      if (e instanceof BatchError) return sendError(new GraphError(e.status, e.code, e.message));
      if (e instanceof CalendarError) return sendError(new GraphError(e.status, e.code, e.message));
      sendError(new GraphError(500, 'generalException', 'An unexpected error occurred in the sandbox.'));
      console.error(e);
    }
  }

  router.use((req, res) => serve(req, res));

  return router;
}
