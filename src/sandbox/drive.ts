import { createHash, randomBytes } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { SandboxContext } from './context.ts';
import { findUser } from './directory.ts';
import { GraphError } from './graph-error.ts';
import { contextUrl, RawBody, type ExtensionCall } from './graph-route.ts';

/**
 * The signed-in user's OneDrive, enough to store files [graph api driveitem-put-content,
 * driveitem-createuploadsession, driveitem-get]:
 *   PUT  /me/drive/root:/{path}:/content                 simple upload (≤ 250 MB): 201 new, 200 replaced
 *   POST /me/drive/root:/{path}:/createUploadSession     → {uploadUrl, expirationDateTime, nextExpectedRanges}
 *   PUT  {uploadUrl} + Content-Range: bytes a-b/total    202 {nextExpectedRanges} … then 201/200 driveItem
 *   GET  /me/drive, /me/drive/root, /me/drive/root:/{path}, …/children, …/content; /me/drive/items/{id}[…]
 * `@microsoft.graph.conflictBehavior` fail | replace | rename (query option of the simple upload, default
 * replace; `item` property of createUploadSession, default fail). Missing folders of a path are created. The
 * upload URL takes no Authorization header. Files live in memory: a restart empties the drive.
 * Facts: docs/microsoft-notes.md, "Headers, attachments, contacts, drive, reply, request budget".
 */
export const SIMPLE_UPLOAD_MAX_BYTES = 250 * 1024 * 1024;
const FRAGMENT_MAX_BYTES = 60 * 1024 * 1024;
const SESSION_LIFETIME_MS = 24 * 3600 * 1000; // the sandbox's choice; Graph states none

interface DriveItem {
  id: string;
  name: string;
  parentId?: string;
  folder: boolean;
  content?: Buffer;
  mimeType?: string;
  createdDateTime: string;
  lastModifiedDateTime: string;
  version: number;
}

interface UserDrive {
  driveId: string;
  rootId: string;
  items: Map<string, DriveItem>;
}

type Conflict = 'fail' | 'replace' | 'rename';

interface UploadSession {
  upn: string;
  parentPath: string[];
  name: string;
  conflict: Conflict;
  total?: number;
  chunks: Buffer[];
  received: number;
  expiresAt: number;
}

class DriveStore {
  readonly drives = new Map<string, UserDrive>();
  readonly sessions = new Map<string, UploadSession>();
  simpleUploadMaxBytes = SIMPLE_UPLOAD_MAX_BYTES;
}

const stores = new WeakMap<SandboxContext, DriveStore>();

function storeOf(ctx: SandboxContext): DriveStore {
  let s = stores.get(ctx);
  if (!s) stores.set(ctx, (s = new DriveStore()));
  return s;
}

function idOf(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 26).toUpperCase();
}

function driveOf(ctx: SandboxContext, upn: string): UserDrive {
  const store = storeOf(ctx);
  const key = upn.toLowerCase();
  let d = store.drives.get(key);
  if (!d) {
    const nowIso = new Date(ctx.now()).toISOString();
    const driveId = `b!${Buffer.from(idOf('drive', key)).toString('base64url')}`;
    const root: DriveItem = { id: `01${idOf('root', key)}`, name: 'root', folder: true, createdDateTime: nowIso, lastModifiedDateTime: nowIso, version: 1 };
    d = { driveId, rootId: root.id, items: new Map([[root.id, root]]) };
    store.drives.set(key, d);
  }
  return d;
}

const INVALID_NAME = /["*:<>?/\\|]/;

function checkName(name: string): void {
  if (!name.trim() || name === '.' || name === '..' || INVALID_NAME.test(name) || /[. ]$/.test(name)) {
    throw new GraphError(400, 'invalidRequest', `The provided name '${name}' is not valid for a OneDrive item (empty, '.', '..', ends with a dot or space, or contains " * : < > ? / \\ |).`);
  }
}

function childNamed(d: UserDrive, parentId: string, name: string): DriveItem | undefined {
  const lower = name.toLowerCase();
  for (const it of d.items.values()) if (it.parentId === parentId && it.name.toLowerCase() === lower) return it;
  return undefined;
}

function pathOf(d: UserDrive, it: DriveItem): string {
  const parts: string[] = [];
  let cur: DriveItem | undefined = it;
  while (cur && cur.id !== d.rootId) {
    parts.unshift(cur.name);
    cur = cur.parentId ? d.items.get(cur.parentId) : undefined;
  }
  return `/${parts.join('/')}`;
}

/** Resolves a path from `from`; `create` makes missing folders (an upload by path does). */
function walk(d: UserDrive, fromId: string, segments: string[], create: { nowIso: string } | undefined): DriveItem | undefined {
  let cur = d.items.get(fromId);
  for (const seg of segments) {
    if (!cur) return undefined;
    let next = childNamed(d, cur.id, seg);
    if (!next && create) {
      checkName(seg);
      next = { id: `01${idOf(d.driveId, cur.id, seg, String(d.items.size))}`, name: seg, parentId: cur.id, folder: true, createdDateTime: create.nowIso, lastModifiedDateTime: create.nowIso, version: 1 };
      d.items.set(next.id, next);
    }
    if (next && !next.folder && create) throw new GraphError(409, 'nameAlreadyExists', `'${seg}' is a file, so it cannot hold '${segments.join('/')}'.`);
    cur = next;
  }
  return cur;
}

function itemJson(ctx: SandboxContext, upn: string, d: UserDrive, it: DriveItem): Record<string, unknown> {
  const user = findUser(upn);
  const by = { user: { displayName: user?.displayName ?? upn, email: upn, id: user?.oid } };
  const parent = it.parentId ? d.items.get(it.parentId) : undefined;
  const parentPath = parent ? (parent.id === d.rootId ? '/drive/root:' : `/drive/root:${pathOf(d, parent)}`) : undefined;
  const json: Record<string, unknown> = {
    createdDateTime: it.createdDateTime, eTag: `"{${it.id}},${it.version}"`, id: it.id, lastModifiedDateTime: it.lastModifiedDateTime,
    name: it.name, webUrl: `${ctx.origin}/personal/${upn.replace(/[@.]/g, '_')}/Documents${it.id === d.rootId ? '' : pathOf(d, it)}`,
    cTag: `"c:{${it.id}},${it.version}"`, size: it.folder ? folderSize(d, it) : it.content?.length ?? 0, createdBy: by, lastModifiedBy: by,
    ...(parent ? { parentReference: { driveType: 'business', driveId: d.driveId, id: parent.id, path: parentPath } } : {}),
    fileSystemInfo: { createdDateTime: it.createdDateTime, lastModifiedDateTime: it.lastModifiedDateTime },
  };
  if (it.folder) json.folder = { childCount: [...d.items.values()].filter((x) => x.parentId === it.id).length };
  else json.file = { mimeType: it.mimeType ?? 'application/octet-stream' };
  if (it.id === d.rootId) json.root = {};
  return json;
}

function folderSize(d: UserDrive, folder: DriveItem): number {
  let size = 0;
  for (const it of d.items.values()) if (it.parentId === folder.id) size += it.folder ? folderSize(d, it) : it.content?.length ?? 0;
  return size;
}

function conflictOf(raw: unknown, fallback: Conflict): Conflict {
  if (raw === undefined || raw === null || raw === '') return fallback;
  if (raw === 'fail' || raw === 'replace' || raw === 'rename') return raw;
  throw new GraphError(400, 'invalidRequest', `Invalid @microsoft.graph.conflictBehavior '${String(raw)}': use fail, replace or rename.`);
}

/**
 * Stores a file at `parentPath/name` as `conflict` says. Returns it and whether it is new (201) or replaced (200).
 * 409 nameAlreadyExists with fail, as Graph answers [driveitem-createuploadsession "Handling upload conflicts"].
 */
function putFile(ctx: SandboxContext, upn: string, parentPath: string[], name: string, bytes: Buffer, mimeType: string, conflict: Conflict) {
  checkName(name);
  const d = driveOf(ctx, upn);
  const nowIso = new Date(ctx.now()).toISOString();
  const parent = walk(d, d.rootId, parentPath, { nowIso })!;
  let target = name;
  const existing = childNamed(d, parent.id, name);
  if (existing && conflict === 'fail') {
    throw new GraphError(409, 'nameAlreadyExists', 'The specified item name already exists. Another file exists with the same name; upload with @microsoft.graph.conflictBehavior replace or rename.');
  }
  if (existing && (conflict === 'rename' || existing.folder)) {
    if (existing.folder && conflict !== 'rename') throw new GraphError(409, 'nameAlreadyExists', `A folder named '${name}' already exists there.`);
    const dot = name.lastIndexOf('.');
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
    for (let n = 1; childNamed(d, parent.id, target); n++) target = `${stem} ${n}${ext}`;
  }
  const same = childNamed(d, parent.id, target);
  if (same) {
    same.content = bytes;
    same.mimeType = mimeType;
    same.lastModifiedDateTime = nowIso;
    same.version += 1;
    return { item: itemJson(ctx, upn, d, same), created: false };
  }
  const it: DriveItem = {
    id: `01${idOf(d.driveId, parent.id, target, String(d.items.size), nowIso)}`, name: target, parentId: parent.id, folder: false,
    content: bytes, mimeType, createdDateTime: nowIso, lastModifiedDateTime: nowIso, version: 1,
  };
  d.items.set(it.id, it);
  return { item: itemJson(ctx, upn, d, it), created: true };
}

const MIME: Record<string, string> = {
  pdf: 'application/pdf', txt: 'text/plain', csv: 'text/csv', png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', zip: 'application/zip', json: 'application/json',
};

function mimeOf(name: string): string {
  return MIME[name.split('.').pop()?.toLowerCase() ?? ''] ?? 'application/octet-stream';
}

const PATH_ADDRESS = /^drive\/(?:root|items\/([^/:]+)):\/(.+?)(?::(?:\/(content|createUploadSession|children))?)?$/;

export function driveRoute(ctx: SandboxContext, call: ExtensionCall, rest: string[]): unknown {
  const method = call.req.method;
  const upn = call.target.upn;
  const d = driveOf(ctx, upn);
  const joined = rest.join('/');
  const nope = () => new GraphError(405, 'BadRequest', `The HTTP method '${method}' is not supported for this resource.`);
  const notFound = () => new GraphError(404, 'itemNotFound', 'The resource could not be found.');
  if (joined === 'drive') {
    if (method !== 'GET') throw nope();
    return {
      '@odata.context': contextUrl(ctx, call, 'drive/$entity'), driveType: 'business', id: d.driveId, name: 'OneDrive',
      owner: { user: { displayName: call.target.displayName, id: call.target.oid } },
      quota: { deleted: 0, remaining: 1099511627776, state: 'normal', total: 1099511627776, used: folderSize(d, d.items.get(d.rootId)!) },
    };
  }
  let item: DriveItem | undefined;
  let action: string | undefined;
  const byPath = PATH_ADDRESS.exec(joined);
  if (byPath) {
    const from = byPath[1] ?? d.rootId;
    const segments = byPath[2]!.split('/').filter(Boolean);
    action = byPath[3];
    if (method === 'PUT' && action === 'content') return simpleUpload(ctx, call, from, segments);
    if (method === 'POST' && action === 'createUploadSession') return createUploadSession(ctx, call, from, segments);
    item = walk(d, from, segments, undefined);
  } else {
    const m = /^drive\/(?:root|items\/([^/]+))(?:\/(content|children))?$/.exec(joined);
    if (!m) throw new GraphError(400, 'BadRequest', `Resource not found for the segment '${rest[rest.length - 1]}'.`);
    item = d.items.get(m[1] ?? d.rootId);
    action = m[2];
    if (item && !item.folder && method === 'PUT' && action === 'content') {
      return simpleUpload(ctx, call, item.parentId!, [item.name], 'replace');
    }
  }
  if (method !== 'GET') throw nope();
  if (!item) throw notFound();
  if (action === 'content') {
    if (item.folder) throw new GraphError(400, 'invalidRequest', 'A folder has no content; ask for …/children.');
    return new RawBody(item.content ?? Buffer.alloc(0), item.mimeType ?? 'application/octet-stream');
  }
  if (action === 'children') {
    if (!item.folder) throw new GraphError(400, 'invalidRequest', 'A file has no children.');
    const value = [...d.items.values()].filter((x) => x.parentId === item!.id).sort((a, b) => a.name.localeCompare(b.name)).map((x) => itemJson(ctx, upn, d, x));
    return { '@odata.context': contextUrl(ctx, call, `drive/items('${item.id}')/children`), value };
  }
  if (action === 'createUploadSession') throw nope();
  return { '@odata.context': contextUrl(ctx, call, 'drive/items/$entity'), ...itemJson(ctx, upn, d, item) };
}

function pathUnder(d: UserDrive, fromId: string, segments: string[]): { parentPath: string[]; name: string } {
  const from = d.items.get(fromId);
  if (!from || !from.folder) throw new GraphError(404, 'itemNotFound', 'The resource could not be found.');
  const base = from.id === d.rootId ? [] : pathOf(d, from).split('/').filter(Boolean);
  const name = segments[segments.length - 1];
  if (!name) throw new GraphError(400, 'invalidRequest', 'The path names no file.');
  return { parentPath: [...base, ...segments.slice(0, -1)], name };
}

function simpleUpload(ctx: SandboxContext, call: ExtensionCall, fromId: string, segments: string[], forced?: Conflict): unknown {
  const store = storeOf(ctx);
  const req = call.req as Request & { driveTooLarge?: boolean };
  const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.from(typeof req.body === 'string' ? req.body : '');
  if (req.driveTooLarge || bytes.length > store.simpleUploadMaxBytes) {
    throw new GraphError(413, 'requestEntityTooLarge', `The simple upload takes at most ${store.simpleUploadMaxBytes} bytes; upload larger files with createUploadSession.`);
  }
  const d = driveOf(ctx, call.target.upn);
  const { parentPath, name } = pathUnder(d, fromId, segments);
  const conflict = forced ?? conflictOf(call.query.get('@microsoft.graph.conflictBehavior'), 'replace');
  const type = String(call.req.headers['content-type'] ?? '').split(';')[0]!.trim();
  const { item, created } = putFile(ctx, call.target.upn, parentPath, name, bytes, type && type !== 'application/octet-stream' ? type : mimeOf(name), conflict);
  call.res.status(created ? 201 : 200);
  return { '@odata.context': contextUrl(ctx, call, 'drive/items/$entity'), ...item };
}

function createUploadSession(ctx: SandboxContext, call: ExtensionCall, fromId: string, segments: string[]): unknown {
  const b = (call.body ?? {}) as { item?: Record<string, unknown>; deferCommit?: unknown };
  if (b.deferCommit === true) {
    throw new GraphError(400, 'invalidRequest', 'The sandbox does not model deferCommit: leave it out and the upload completes with its last byte range.');
  }
  const d = driveOf(ctx, call.target.upn);
  const { parentPath, name } = pathUnder(d, fromId, segments);
  checkName(name);
  const itemName = b.item?.name;
  if (itemName !== undefined && itemName !== name) throw new GraphError(400, 'invalidRequest', `item.name '${String(itemName)}' must be the file name of the path ('${name}').`);
  const conflict = conflictOf(b.item?.['@microsoft.graph.conflictBehavior'], 'fail');
  const token = randomBytes(24).toString('base64url');
  const expiresAt = ctx.now() + SESSION_LIFETIME_MS;
  storeOf(ctx).sessions.set(token, { upn: call.target.upn, parentPath, name, conflict, chunks: [], received: 0, expiresAt });
  return {
    '@odata.context': `${ctx.origin}/v1.0/$metadata#microsoft.graph.uploadSession`,
    uploadUrl: `${ctx.origin}/_upload/${token}`, expirationDateTime: new Date(expiresAt).toISOString(), nextExpectedRanges: ['0-'],
  };
}

/**
 * The simple upload's body as bytes: before the Graph router's text parser, for PUT …/content only. A body
 * over the limit is not kept; the route answers 413 for it.
 */
export function driveBodyParser(ctx: SandboxContext): express.RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'PUT' || !/\/drive\//.test(req.path) || !/content$/.test(req.path)) return next();
    const limit = storeOf(ctx).simpleUploadMaxBytes;
    express.raw({ type: () => true, limit })(req, res, (err?: unknown) => {
      if ((err as { type?: string } | undefined)?.type === 'entity.too.large') {
        (req as Request & { driveTooLarge?: boolean }).driveTooLarge = true;
        req.body = Buffer.alloc(0);
        (req as unknown as { _body: boolean })._body = true;
        return next();
      }
      next(err as Error | undefined);
    });
  };
}

/** The upload URLs of upload sessions, outside /v1.0 and without bearer tokens, like OneDrive's own. */
export function createUploadRouter(ctx: SandboxContext): express.Router {
  const r = express.Router();
  const fail = (res: Response, status: number, code: string, message: string) => res.status(status).json({ error: { code, message } });
  const sessionOf = (token: string) => {
    const s = storeOf(ctx).sessions.get(token);
    if (s && s.expiresAt <= ctx.now()) storeOf(ctx).sessions.delete(token);
    return s && s.expiresAt > ctx.now() ? s : undefined;
  };
  const status = (s: UploadSession) => ({ expirationDateTime: new Date(s.expiresAt).toISOString(), nextExpectedRanges: [`${s.received}-`] });
  r.use(express.raw({ type: () => true, limit: FRAGMENT_MAX_BYTES + 1 }));
  r.all('/:token', (req: Request, res: Response) => {
    const token = String(req.params.token);
    // "If you include the Authorization header when issuing the PUT call, it may result in an HTTP 401".
    if (req.headers.authorization) return fail(res, 401, 'unauthenticated', 'Do not send an Authorization header to an upload URL: the URL itself carries the authorization.');
    const s = sessionOf(token);
    if (!s) return fail(res, 404, 'itemNotFound', 'The upload session was not found or has expired: create a new one.');
    if (req.method === 'GET') return res.status(200).json(status(s));
    if (req.method === 'DELETE') {
      storeOf(ctx).sessions.delete(token);
      return res.status(204).end();
    }
    if (req.method !== 'PUT') return fail(res, 405, 'invalidRequest', `Use PUT with Content-Range to upload, GET for the status, DELETE to cancel (not ${req.method}).`);
    const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(req.headers['content-range'] ?? ''));
    if (!m) return fail(res, 400, 'invalidRequest', 'Content-Range must be "bytes {first}-{last}/{total}".');
    const [first, last, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (last < first || last >= total) return fail(res, 400, 'invalidRequest', `Content-Range ${first}-${last}/${total} is not a range of the file.`);
    if (bytes.length !== last - first + 1) return fail(res, 400, 'invalidRequest', `The body has ${bytes.length} bytes but Content-Range names ${last - first + 1}.`);
    if (bytes.length > FRAGMENT_MAX_BYTES) return fail(res, 413, 'requestEntityTooLarge', 'A byte range must be smaller than 60 MiB.');
    if (s.total !== undefined && s.total !== total) return fail(res, 400, 'invalidRequest', `The file size must stay ${s.total} in every Content-Range (got ${total}).`);
    if (first !== s.received) {
      return fail(res, 416, 'invalidRange', `The server expects the range starting at ${s.received} (nextExpectedRanges ["${s.received}-"]); fragments go in order and once.`);
    }
    s.total = total;
    s.chunks.push(Buffer.from(bytes));
    s.received += bytes.length;
    if (s.received < total) return res.status(202).json(status(s));
    try {
      const { item, created } = putFile(ctx, s.upn, s.parentPath, s.name, Buffer.concat(s.chunks), mimeOf(s.name), s.conflict);
      storeOf(ctx).sessions.delete(token);
      return res.status(created ? 201 : 200).json(item);
    } catch (e) {
      // The session stays until it expires, so the upload can be completed under another behaviour.
      s.chunks = [Buffer.concat(s.chunks)];
      s.received = total;
      if (e instanceof GraphError) return fail(res, e.status, e.code, e.message);
      throw e;
    }
  });
  return r;
}

export interface AdminDriveFile {
  id: string;
  path: string;
  name: string;
  size: number;
  mimeType: string;
  createdDateTime: string;
  lastModifiedDateTime: string;
}

/** Every file in the user's drive, by path. */
export function driveFiles(ctx: SandboxContext, upn: string): AdminDriveFile[] {
  const d = driveOf(ctx, upn);
  return [...d.items.values()].filter((it) => !it.folder).map((it) => ({
    id: it.id, path: pathOf(d, it), name: it.name, size: it.content?.length ?? 0, mimeType: it.mimeType ?? 'application/octet-stream',
    createdDateTime: it.createdDateTime, lastModifiedDateTime: it.lastModifiedDateTime,
  })).sort((a, b) => a.path.localeCompare(b.path));
}

/** The bytes of the file at `path` ("/Receipts/2026/a.pdf"), or undefined. */
export function driveFileContent(ctx: SandboxContext, upn: string, path: string): Buffer | undefined {
  const d = driveOf(ctx, upn);
  const it = walk(d, d.rootId, path.split('/').filter(Boolean), undefined);
  return it && !it.folder ? it.content ?? Buffer.alloc(0) : undefined;
}

export function setSimpleUploadMaxBytes(ctx: SandboxContext, bytes: number): void {
  if (!Number.isInteger(bytes) || bytes < 1) throw new Error(`simpleUploadMaxBytes must be a positive whole number (got ${JSON.stringify(bytes)}); Graph's is ${SIMPLE_UPLOAD_MAX_BYTES}`);
  storeOf(ctx).simpleUploadMaxBytes = bytes;
}

/** Empties every drive and upload session and restores the real simple-upload limit. */
export function resetDrives(ctx: SandboxContext): void {
  stores.set(ctx, new DriveStore());
}
