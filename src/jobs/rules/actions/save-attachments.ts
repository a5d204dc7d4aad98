import { createHash } from 'node:crypto';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import nodePath from 'node:path';
import { describe } from '../../../config/check-helpers.ts';
import { Drive, isNameTaken } from '../../../graph/drive.ts';
import type { GraphMessage } from '../../../graph/mailbox.ts';
import { jobTimeZone, zoneOffset } from '../../../graph/timezone.ts';
import { ActionCallError, checkMapping, type ActionContext, type ActionDefinition, type PermissionUse } from '../definition.ts';
import { typeMatches } from '../keys/attachments.ts';

export interface SaveAttachmentsSpec {
  /** An absolute local folder, or `onedrive:/Path` (both may hold {yyyy}, {MM}, {dd} of the message's date). */
  to: string;
  types?: string[];
  /** The jobs file's time zone for the placeholders; absent: the mailbox's own. */
  zone?: string;
}

interface AttachmentMeta {
  '@odata.type'?: string;
  id: string;
  name?: string;
  contentType?: string;
  size?: number;
  isInline?: boolean;
}

const ONEDRIVE = 'onedrive:';
const MAX_NAME = 200;
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$/i;

/** A file name that stays in its folder: no path, no control or reserved characters, no leading dots, not empty. */
export function safeFileName(name: string): string {
  let base = name.split(/[/\\]/).pop() ?? '';
  base = base.replace(/[\u0000-\u001f\u007f<>:"|?*]/g, '_').replace(/^[.\s]+|[.\s]+$/g, '');
  if (WINDOWS_RESERVED.test(base)) base = `_${base}`;
  if (base === '') base = 'attachment';
  if (Buffer.byteLength(base) > MAX_NAME) {
    const ext = nodePath.extname(base).slice(0, 20);
    base = `${Buffer.from(base.slice(0, base.length - ext.length)).subarray(0, MAX_NAME - Buffer.byteLength(ext)).toString('utf8').replace(/\uFFFD+$/, '')}${ext}`;
  }
  return base;
}

/** `{yyyy}`, `{MM}`, `{dd}` of the message's received date in `zone` (IANA; default UTC). */
export function expandDatePlaceholders(path: string, received: string, zone = 'UTC'): string {
  const at = Number.isNaN(Date.parse(received)) ? 0 : Date.parse(received);
  const d = new Date(at + zoneOffset(at, zone));
  const two = (n: number) => String(n).padStart(2, '0');
  return path.replace(/\{yyyy\}/g, String(d.getUTCFullYear())).replace(/\{MM\}/g, two(d.getUTCMonth() + 1)).replace(/\{dd\}/g, two(d.getUTCDate()));
}

/** `invoice.pdf`, `invoice (1).pdf`, `invoice (2).pdf`, … */
function numbered(name: string, n: number): string {
  if (n === 0) return name;
  const ext = nodePath.extname(name);
  return `${name.slice(0, name.length - ext.length)} (${n})${ext}`;
}

/**
 * Writes `bytes` into `dir` as `name`, or as a numbered copy when that name is taken: never over a file. Each name
 * tried is noted in the store (`pendingKey`) before the link that takes it, so after a crash the next run
 * recognises its own file (same name and same bytes: the name noted may be another message's file, the one the
 * link found taken) instead of writing a second copy.
 */
async function saveLocal(ctx: ActionContext, dir: string, name: string, bytes: Buffer, pendingKey: string): Promise<string> {
  // The bytes go to a private temporary file, then a hard link gives them their name: the link fails if the name
  // is taken (no overwrite, even by another process), and a crash never leaves a half-written file under it. The
  // temporary name is the same for every try of one attachment, so a run after a crash removes what a killed
  // one left behind.
  const temp = nodePath.join(dir, `.${createHash('sha256').update(`${ctx.job}\0${pendingKey}`).digest('hex').slice(0, 16)}.part`);
  const pending = await ctx.store.get<string>(pendingKey);
  if (pending !== undefined) {
    const existing = await stat(pending).catch(() => undefined);
    if (existing?.isFile() && existing.size === bytes.length && (await readFile(pending)).equals(bytes)) {
      await unlink(temp).catch(() => undefined);
      return pending;
    }
  }
  await mkdir(dir, { recursive: true });
  await unlink(temp).catch(() => undefined);
  await writeFile(temp, bytes, { flag: 'wx', mode: 0o600 });
  try {
    for (let n = 0; ; n++) {
      const target = nodePath.join(dir, numbered(name, n));
      await ctx.store.set(pendingKey, target);
      try {
        await link(temp, target);
        return target;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || n >= 999) throw error;
      }
    }
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

const DRIVE_NAME_PROBLEM = /["*:<>?\\|\u0000-\u001f]/;

/**
 * The folder of an `onedrive:` target (`onedrive:/Receipts/{yyyy}` → `/Receipts/{yyyy}`), or what is wrong with
 * it: OneDrive refuses names with " * : < > ? \\ |, `.`/`..`, or a trailing dot or space
 * [docs/microsoft-notes.md, "saveAttachments to OneDrive"].
 */
export function oneDriveFolder(to: string): { folder: string } | { problem: string } {
  const segments = to.slice(ONEDRIVE.length).split('/').map((s) => s.trim()).filter(Boolean);
  for (const seg of segments) {
    if (seg === '.' || seg === '..') return { problem: `the folder name '${seg}' cannot be used in OneDrive (a path from the drive's root, no . or ..)` };
    if (DRIVE_NAME_PROBLEM.test(seg) || /[. ]$/.test(seg)) return { problem: `the folder name '${seg}' cannot be used in OneDrive (no " * : < > ? \\ | and no trailing dot or space)` };
  }
  return { folder: `/${segments.join('/')}` };
}

/**
 * Uploads `bytes` to OneDrive as `folder/name`, or as a numbered copy when that name is taken: never over a file
 * (each upload uses conflictBehavior fail). As for the local target, the path chosen (and the upload session's
 * URL) is noted in the store before the upload, so after a crash the next run recognises its own file (same path
 * and size) instead of uploading a second copy, and cancels a session left half-way (nothing of the file exists
 * in OneDrive until a session's last range, so the upload simply starts again).
 */
async function saveOneDrive(ctx: ActionContext, folder: string, name: string, bytes: Buffer, contentType: string, pendingKey: string): Promise<string> {
  const drive = new Drive(ctx.graph, ctx.mailbox.root);
  const pending = await ctx.store.get<{ path: string; uploadUrl?: string }>(pendingKey);
  if (pending !== undefined) {
    const existing = await drive.file(pending.path, ctx.signal);
    if (existing && existing.size === bytes.length) return pending.path;
    if (pending.uploadUrl) await drive.cancelSession(pending.uploadUrl);
  }
  for (let n = 0; n < 1000; n++) {
    const path = `${folder === '/' ? '' : folder}/${numbered(name, n)}`;
    // Checked first: an upload session would learn that the name is taken only at its last range.
    if (await drive.file(path, ctx.signal)) continue;
    await ctx.store.set(pendingKey, { path });
    try {
      await drive.upload(path, bytes, contentType, { signal: ctx.signal, onSession: (uploadUrl) => ctx.store.set(pendingKey, { path, uploadUrl }) });
      return path;
    } catch (error) {
      if (!isNameTaken(error)) throw error;
    }
  }
  throw new ActionCallError(`${folder}/${name} and its numbered copies up to (999) all exist in OneDrive: nothing was saved.`, false, false);
}

const zones = new WeakMap<object, Promise<string>>();

/** The zone of the date placeholders: the jobs file's, else the mailbox's (looked up once per run). */
function placeholderZone(ctx: ActionContext, spec: SaveAttachmentsSpec): Promise<string> {
  if (spec.zone) return Promise.resolve(spec.zone);
  let zone = zones.get(ctx.mailbox);
  if (!zone) zones.set(ctx.mailbox, (zone = jobTimeZone(undefined, () => ctx.mailbox.settings(), ctx.log).then((z) => z.iana)));
  return zone;
}

const ONEDRIVE_PERMISSION: PermissionUse = { permission: 'Files.ReadWrite', why: 'saves attachments to OneDrive' };

/**
 * `saveAttachments: { to: ~/Receipts/{yyyy}, types: [pdf] }`: saves the message's attachments (not inline
 * pictures; only `types` when given) to a local folder, each once ever: a ledger in the job's store remembers
 * every attachment saved, so a repeated or resumed run saves only what is missing.
 */
export const saveAttachments: ActionDefinition<SaveAttachmentsSpec, SaveAttachmentsSpec> = {
  check: (raw, at, t) => {
    const example = 'e.g. { saveAttachments: { to: "./Receipts/{yyyy}/{MM}", types: [pdf] } }';
    const spec = checkMapping(raw, at, t, 'saveAttachments', ['to', 'types'], 'to: (a folder) and types: (optional)', example);
    if (!spec) return undefined;
    if (typeof spec.to !== 'string' || spec.to.trim() === '') {
      t.add(spec.to === undefined ? at : [...at, 'to'], `saveAttachments needs to: the folder to save into, but it is ${describe(spec.to)}. Fix: ${example}.`);
      return undefined;
    }
    const to = spec.to.trim();
    let target: string;
    if (to.toLowerCase().startsWith(ONEDRIVE)) {
      const drive = oneDriveFolder(to);
      if ('problem' in drive) {
        t.add([...at, 'to'], `saveAttachments to: ${to}: ${drive.problem}. Fix: e.g. to: "onedrive:/Receipts/{yyyy}/{MM}".`);
        return undefined;
      }
      target = `${ONEDRIVE}${drive.folder}`;
    } else {
      target = t.resolvePath(to);
    }
    let types: string[] | undefined;
    if (spec.types !== undefined) {
      types = t.textList(spec.types, [...at, 'types'], 'types');
      if (!types) return undefined;
    }
    return { to: target, ...(types ? { types } : {}), ...(t.timezone ? { zone: t.timezone } : {}) };
  },
  plan: (value, state) => (state.first('saveAttachments', value.to) ? value : undefined),
  execution: {
    kind: 'call',
    async run(ctx, message, step) {
      const spec = step.value;
      const toDrive = spec.to.startsWith(ONEDRIVE);
      if (toDrive && ctx.mailbox.root !== '/me') {
        // OneDrive is outside what ApplicationAccessPolicy / RBAC for Applications confine [docs/microsoft-notes.md].
        throw new ActionCallError(`saveAttachments to ${spec.to} is refused in app-only mode (AUTH_MODE=app-only): Exchange's mailbox confinement does not cover OneDrive, so the app's reach there could not be limited to one person. Fix: save to a local folder, or run the agent with a delegated sign-in.`, false, false);
      }
      const base = ctx.mailbox.path(`/messages/${encodeURIComponent(message.id)}/attachments`);
      const list = (await ctx.graph.get<{ value?: AttachmentMeta[] }>(`${base}?$select=id,name,contentType,size,isInline`, { signal: ctx.signal })).body.value ?? [];
      const wanted = list.filter((a) =>
        a.isInline !== true && (a['@odata.type'] ?? '#microsoft.graph.fileAttachment') === '#microsoft.graph.fileAttachment' &&
        (!spec.types || spec.types.some((p) => typeMatches(p, { name: a.name ?? '', contentType: a.contentType ?? '', size: a.size ?? 0, isInline: false }))));
      if (wanted.length === 0) return { skipped: `no attachment${spec.types ? ` of type ${spec.types.join(', ')}` : ''} to save` };
      let dir: string | undefined;
      for (const a of wanted) {
        const ledgerKey = `saved:${message.id}:${a.id}:${spec.to}`;
        if (await ctx.store.get<string>(ledgerKey)) continue;
        dir ??= expandDatePlaceholders(spec.to, String((message as GraphMessage).receivedDateTime ?? ''), await placeholderZone(ctx, spec));
        const full = (await ctx.graph.get<{ contentBytes?: string }>(`${base}/${encodeURIComponent(a.id)}`, { signal: ctx.signal })).body;
        const bytes = Buffer.from(full.contentBytes ?? '', 'base64');
        const pendingKey = `saving:${message.id}:${a.id}:${spec.to}`;
        const saved = toDrive
          ? `${ONEDRIVE}${await saveOneDrive(ctx, dir.slice(ONEDRIVE.length), safeFileName(a.name ?? ''), bytes, a.contentType || 'application/octet-stream', pendingKey)}`
          : await saveLocal(ctx, dir, safeFileName(a.name ?? ''), bytes, pendingKey);
        await ctx.store.set(ledgerKey, saved);
      }
    },
  },
  // Harmless to repeat: each attachment saved is in the ledger, so a run after a crash saves only what is missing.
  onceOnly: false,
  // Only a OneDrive target needs it (permissionFor); a local folder needs no permission beyond reading the mail.
  permission: ONEDRIVE_PERMISSION,
  permissionFor: (value) => (value.to.toLowerCase().startsWith(ONEDRIVE) ? ONEDRIVE_PERMISSION : undefined),
  bareValue: '…',
  readme: {
    example: 'saveAttachments: { to: "onedrive:/Receipts/{yyyy}/{MM}", types: [pdf] }',
    text: 'saves the attachments (not inline pictures; only `types` when given) into a local folder (relative to the jobs file) or into OneDrive with `to: "onedrive:/Receipts/{yyyy}"` (`{yyyy}`, `{MM}`, `{dd}` of the message\'s date in the jobs file\'s timezone, else the mailbox\'s): safe file names, never over a file (`name (1).pdf`), each attachment once ever, resumed after a crash; a local folder needs no extra permission; OneDrive works with a delegated sign-in only (refused in app-only mode: Exchange\'s mailbox confinement does not cover OneDrive)',
  },
};
