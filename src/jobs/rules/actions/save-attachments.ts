import { randomBytes } from 'node:crypto';
import { link, mkdir, stat, unlink, writeFile } from 'node:fs/promises';
import nodePath from 'node:path';
import { describe } from '../../../config/check-helpers.ts';
import type { GraphMessage } from '../../../graph/mailbox.ts';
import { checkMapping, type ActionContext, type ActionDefinition } from '../definition.ts';
import { typeMatches } from '../keys/attachments.ts';

export interface SaveAttachmentsSpec {
  /** An absolute local folder, or `onedrive:/Path` (both may hold {yyyy}, {MM}, {dd} of the message's date). */
  to: string;
  types?: string[];
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

/** `{yyyy}`, `{MM}`, `{dd}` of the message's received date (UTC). */
export function expandDatePlaceholders(path: string, received: string): string {
  const d = new Date(Number.isNaN(Date.parse(received)) ? 0 : Date.parse(received));
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
 * Writes `bytes` into `dir` as `name`, or as a numbered copy when that name is taken: never over a file. The name
 * chosen is noted in the store (`pendingKey`) before the file appears, so after a crash the next run recognises
 * its own file (same name and size) instead of writing a second copy.
 */
async function saveLocal(ctx: ActionContext, dir: string, name: string, bytes: Buffer, pendingKey: string): Promise<string> {
  const pending = await ctx.store.get<string>(pendingKey);
  if (pending !== undefined) {
    const existing = await stat(pending).catch(() => undefined);
    if (existing?.isFile() && existing.size === bytes.length) return pending;
  }
  await mkdir(dir, { recursive: true });
  // The bytes go to a private temporary file, then a hard link gives them their name: the link fails if the name
  // is taken (no overwrite, even by another process), and a crash never leaves a half-written file under it.
  const temp = nodePath.join(dir, `.${randomBytes(6).toString('hex')}.part`);
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
    if (to.toLowerCase().startsWith(ONEDRIVE)) {
      t.add([...at, 'to'], `saving to OneDrive (${to}) is not available in this version: the Graph client cannot upload file content yet. Fix: save to a local folder, e.g. to: "./Receipts/{yyyy}/{MM}".`);
      return undefined;
    }
    let types: string[] | undefined;
    if (spec.types !== undefined) {
      types = t.textList(spec.types, [...at, 'types'], 'types');
      if (!types) return undefined;
    }
    return { to: t.resolvePath(to), ...(types ? { types } : {}) };
  },
  plan: (value, state) => (state.first('saveAttachments', value.to) ? value : undefined),
  execution: {
    kind: 'call',
    async run(ctx, message, step) {
      const spec = step.value;
      const base = ctx.mailbox.path(`/messages/${encodeURIComponent(message.id)}/attachments`);
      const list = (await ctx.graph.get<{ value?: AttachmentMeta[] }>(`${base}?$select=id,name,contentType,size,isInline`, { signal: ctx.signal })).body.value ?? [];
      const wanted = list.filter((a) =>
        a.isInline !== true && (a['@odata.type'] ?? '#microsoft.graph.fileAttachment') === '#microsoft.graph.fileAttachment' &&
        (!spec.types || spec.types.some((p) => typeMatches(p, { name: a.name ?? '', contentType: a.contentType ?? '', size: a.size ?? 0, isInline: false }))));
      if (wanted.length === 0) return { skipped: `no attachment${spec.types ? ` of type ${spec.types.join(', ')}` : ''} to save` };
      const dir = expandDatePlaceholders(spec.to, String((message as GraphMessage).receivedDateTime ?? ''));
      for (const a of wanted) {
        const ledgerKey = `saved:${message.id}:${a.id}:${spec.to}`;
        if (await ctx.store.get<string>(ledgerKey)) continue;
        const full = (await ctx.graph.get<{ contentBytes?: string }>(`${base}/${encodeURIComponent(a.id)}`, { signal: ctx.signal })).body;
        const bytes = Buffer.from(full.contentBytes ?? '', 'base64');
        const path = await saveLocal(ctx, dir, safeFileName(a.name ?? ''), bytes, `saving:${message.id}:${a.id}:${spec.to}`);
        await ctx.store.set(ledgerKey, path);
      }
    },
  },
  // Harmless to repeat: each attachment saved is in the ledger, so a run after a crash saves only what is missing.
  onceOnly: false,
  permission: undefined,
  bareValue: '…',
  readme: {
    example: 'saveAttachments: { to: "./Receipts/{yyyy}/{MM}", types: [pdf] }',
    text: 'saves the attachments (not inline pictures; only `types` when given) into a local folder (relative to the jobs file; `{yyyy}`, `{MM}`, `{dd}` of the message\'s date): safe file names, never over a file (`name (1).pdf`), each attachment once ever, resumed after a crash',
  },
};
