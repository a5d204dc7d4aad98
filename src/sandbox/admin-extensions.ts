import type { Request, Response, Router } from 'express';
import { AdminError } from './admin.ts';
import { budgetUsage, checkBudgetSettings, resetBudget, setBudget, type BudgetSettings, type BudgetUsage } from './budget.ts';
import type { SandboxContext } from './context.ts';
import { findUser, SANDBOX_USERS } from './directory.ts';
import { driveFileContent, driveFiles, resetDrives, setSimpleUploadMaxBytes, type AdminDriveFile } from './drive.ts';
import type { Address, AttachmentInput, MessageHeader } from './mailbox-generator.ts';
import { attachmentBytes, type Mailbox, type StoredContact } from './mailbox-store.ts';
import { internetMessageHeaders } from './message-headers.ts';

/**
 * Sandbox control for headers, attachments, contacts, OneDrive and the request budget; part of `sandbox.admin`
 * and of the /_sandbox HTTP routes (src/sandbox/admin.ts lists the older ones):
 *
 *   GET    /_sandbox/mailbox/:upn/messages/:id         one message: recipients, internetMessageHeaders, attachments
 *   GET    /_sandbox/mailbox/:upn/messages/:id/attachments/:aid/content   the attachment's bytes
 *   GET    /_sandbox/mailbox/:upn/contacts             contacts
 *   POST   /_sandbox/mailbox/:upn/contacts             {displayName, emailAddresses: [address | {name?, address}]} -> 201
 *   PATCH  /_sandbox/mailbox/:upn/contacts/:id         {displayName?, emailAddresses?} (delta shows it changed)
 *   DELETE /_sandbox/mailbox/:upn/contacts/:id         (delta shows it @removed)
 *   GET    /_sandbox/mailbox/:upn/drive                files in the user's OneDrive (path, size, mimeType)
 *   GET    /_sandbox/mailbox/:upn/drive/content?path=/A/b.pdf   a file's bytes
 *   GET    /_sandbox/budget                            {limit, windowMs, throttled, windows: [{appId, upn, used}]}
 *   POST   /_sandbox/budget                            {limit?, windowMs?} (also POST /_sandbox/options {budget: {…}})
 *   POST   /_sandbox/options                           also takes {budget?: {limit?, windowMs?}, simpleUploadMaxBytes?}
 * POST /_sandbox/mailbox/:upn/messages also takes internetMessageHeaders [{name, value}], attachments
 * [{name, contentType, content (base64), isInline?, contentId?}] and replyTo.
 */

/** What admin.deliver accepts beyond subject, sender and body. */
export interface DeliveryExtras {
  internetMessageHeaders?: MessageHeader[];
  /** `content`: a Buffer, or base64 (over HTTP). */
  attachments?: { name: string; contentType?: string; content: Buffer | string; isInline?: boolean; contentId?: string }[];
  replyTo?: (string | { name?: string; address: string })[];
}

export interface AdminMessageDetail {
  id: string;
  immutableId: string;
  subject: string;
  from: Address;
  to: Address[];
  cc: Address[];
  replyTo: Address[];
  body: string;
  bodyContentType: 'html' | 'text';
  hasAttachments: boolean;
  internetMessageHeaders: MessageHeader[];
  attachments: { id: string; name: string; contentType: string; size: number; isInline: boolean }[];
}

export interface AdminContact {
  id: string;
  displayName: string;
  emailAddresses: Address[];
}

export interface ContactInput {
  displayName: string;
  givenName?: string;
  surname?: string;
  emailAddresses: (string | { name?: string; address: string })[];
}

export interface ExtensionAdmin {
  /** One message as stored: recipients, headers (as `$select=internetMessageHeaders` shows them), attachments. */
  messageDetail(upn: string, id: string): AdminMessageDetail;
  attachmentContent(upn: string, messageId: string, attachmentId: string): Buffer;
  contacts(upn: string): AdminContact[];
  /** A contact appears in the person's Contacts folder (and in the next contacts delta). */
  addContact(upn: string, input: ContactInput): AdminContact;
  updateContact(upn: string, id: string, change: Partial<ContactInput>): AdminContact;
  removeContact(upn: string, id: string): void;
  /** Files in the user's OneDrive. */
  driveFiles(upn: string): AdminDriveFile[];
  /** The bytes of the file at `path` ("/Receipts/2026/a.pdf"), or undefined when there is none. */
  driveFileContent(upn: string, path: string): Buffer | undefined;
  /** The simple upload's limit (Graph: 250 MB), lower for tests of the 413 and of upload sessions. */
  setSimpleUploadMaxBytes(bytes: number): void;
  /** Outlook's budget per app and mailbox (real: 10,000 per 600,000 ms), e.g. {limit: 100, windowMs: 6000}. */
  setBudget(settings: Partial<BudgetSettings>): BudgetSettings;
  budget(): BudgetUsage;
}

export function createExtensionAdmin(ctx: SandboxContext): ExtensionAdmin {
  const nowIso = () => new Date(ctx.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const contactOf = (b: Mailbox, id: string): StoredContact => {
    const c = b.contacts.get(id);
    if (!c) throw new AdminError(404, `No contact '${id}' in ${b.upn}`);
    return c;
  };
  const view = (c: StoredContact): AdminContact => ({ id: c.id, displayName: c.displayName, emailAddresses: c.emailAddresses.map((a) => ({ ...a })) });
  return {
    messageDetail(upn, id) {
      const m = boxOf(ctx, upn).message(id);
      if (!m) throw new AdminError(404, `No message '${id}' in ${upn}`);
      return {
        id: m.id, immutableId: m.immutableId, subject: m.subject, from: m.from, to: m.to, cc: m.cc, replyTo: m.replyTo ?? [], body: m.body,
        bodyContentType: m.bodyContentType, hasAttachments: m.hasAttachments, internetMessageHeaders: internetMessageHeaders(m),
        attachments: (m.attachments ?? []).map((a) => ({ id: a.id, name: a.name, contentType: a.contentType, size: a.size, isInline: a.isInline })),
      };
    },
    attachmentContent(upn, messageId, attachmentId) {
      const a = boxOf(ctx, upn).message(messageId)?.attachments?.find((x) => x.id === attachmentId);
      if (!a) throw new AdminError(404, `No attachment '${attachmentId}' on message '${messageId}' in ${upn}`);
      return attachmentBytes(a);
    },
    contacts: (upn) => [...boxOf(ctx, upn).contacts.values()].map(view),
    addContact: (upn, input) => view(boxOf(ctx, upn).addContact(contactInput(input), nowIso())),
    updateContact(upn, id, change) {
      const b = boxOf(ctx, upn);
      const full = contactInput({ displayName: 'x', emailAddresses: [], ...change });
      return view(b.updateContact(contactOf(b, id), {
        ...(change.displayName !== undefined ? { displayName: full.displayName } : {}), givenName: change.givenName, surname: change.surname,
        ...(change.emailAddresses ? { emailAddresses: full.emailAddresses } : {}),
      }, nowIso()));
    },
    removeContact(upn, id) {
      const b = boxOf(ctx, upn);
      b.deleteContact(contactOf(b, id));
    },
    driveFiles: (upn) => driveFiles(ctx, userOf(upn)),
    driveFileContent: (upn, path) => driveFileContent(ctx, userOf(upn), path),
    setSimpleUploadMaxBytes: (bytes) => setSimpleUploadMaxBytes(ctx, bytes),
    setBudget: (settings) => setBudget(ctx, settings),
    budget: () => budgetUsage(ctx),
  };
}

/** admin.reset() empties drives and restores the configured budget. */
export function resetExtensions(ctx: SandboxContext): void {
  resetBudget(ctx);
  resetDrives(ctx);
}

/** The extra fields of admin.deliver as the store takes them, each checked with the fix named. */
export function deliveryExtras(input: DeliveryExtras): { internetMessageHeaders?: MessageHeader[]; attachments?: AttachmentInput[]; replyTo?: Address[] } {
  const headers = input.internetMessageHeaders;
  if (headers !== undefined && (!Array.isArray(headers) || !headers.every((h) => typeof h?.name === 'string' && typeof h?.value === 'string'))) {
    throw new AdminError(400, 'internetMessageHeaders must be an array of {name, value} strings, e.g. [{"name": "List-Id", "value": "News <news.example.com>"}]');
  }
  const attachments = input.attachments?.map((a, i) => {
    if (!a || typeof a.name !== 'string' || (typeof a.content !== 'string' && !Buffer.isBuffer(a.content))) {
      throw new AdminError(400, `attachments[${i}] needs name (string) and content (a Buffer, or base64 text over HTTP)`);
    }
    return { name: a.name, contentType: a.contentType ?? 'application/octet-stream', content: a.content, isInline: a.isInline === true, contentId: a.contentId };
  });
  if (input.attachments !== undefined && !Array.isArray(input.attachments)) throw new AdminError(400, 'attachments must be an array');
  return {
    ...(headers ? { internetMessageHeaders: headers } : {}),
    ...(attachments ? { attachments } : {}),
    ...(input.replyTo ? { replyTo: input.replyTo.map(addressOf) } : {}),
  };
}

type Wrap = (fn: (req: Request, res: Response) => unknown) => (req: Request, res: Response) => void;

/** Registers the routes listed above on the /_sandbox router (before its own /options handler). */
export function mountExtensionRoutes(r: Router, admin: ExtensionAdmin, wrap: Wrap): void {
  const upn = (req: Request) => String(req.params.upn);
  r.post('/options', (req, res, next) => {
    const b = (req.body ?? {}) as { budget?: Partial<BudgetSettings>; simpleUploadMaxBytes?: unknown };
    try {
      if (b.budget !== undefined) admin.setBudget(checkBudgetSettings(b.budget));
      if (b.simpleUploadMaxBytes !== undefined) admin.setSimpleUploadMaxBytes(b.simpleUploadMaxBytes as number);
    } catch (e) {
      return void res.status(400).json({ error: (e as Error).message });
    }
    next();
  });
  r.get('/budget', wrap(() => admin.budget()));
  r.post('/budget', wrap((req) => admin.setBudget(checkBudgetSettings((req.body ?? {}) as Partial<BudgetSettings>))));
  r.get('/mailbox/:upn/messages/:id', wrap((req) => admin.messageDetail(upn(req), String(req.params.id))));
  r.get('/mailbox/:upn/messages/:id/attachments/:aid/content', wrap((req, res) => {
    res.type('application/octet-stream').send(admin.attachmentContent(upn(req), String(req.params.id), String(req.params.aid)));
  }));
  r.get('/mailbox/:upn/contacts', wrap((req) => admin.contacts(upn(req))));
  r.post('/mailbox/:upn/contacts', wrap((req, res) => {
    const contact = admin.addContact(upn(req), (req.body ?? {}) as ContactInput);
    res.status(201);
    return contact;
  }));
  r.patch('/mailbox/:upn/contacts/:id', wrap((req) => admin.updateContact(upn(req), String(req.params.id), (req.body ?? {}) as Partial<ContactInput>)));
  r.delete('/mailbox/:upn/contacts/:id', wrap((req) => admin.removeContact(upn(req), String(req.params.id))));
  r.get('/mailbox/:upn/drive', wrap((req) => admin.driveFiles(upn(req))));
  r.get('/mailbox/:upn/drive/content', wrap((req, res) => {
    const path = typeof req.query.path === 'string' ? req.query.path : '';
    const bytes = admin.driveFileContent(upn(req), path);
    if (!bytes) throw new AdminError(404, `No file at '${path}' in ${upn(req)}'s drive (give ?path=/Folder/name.ext)`);
    res.type('application/octet-stream').send(bytes);
  }));
}

function userOf(upn: string): string {
  const user = findUser(upn);
  if (!user) throw new AdminError(404, `No sandbox user '${upn}'. Known: ${SANDBOX_USERS.map((u) => u.upn).join(', ')}`);
  return user.upn;
}

function boxOf(ctx: SandboxContext, upn: string): Mailbox {
  const b = ctx.state.mailbox(userOf(upn));
  if (!b) throw new AdminError(404, `No sandbox mailbox '${upn}'`);
  return b;
}

function addressOf(a: string | { name?: string; address: string }): Address {
  if (typeof a === 'string') return { name: a, address: a };
  if (!a || typeof a.address !== 'string') throw new AdminError(400, 'an address is "someone@example.com" or {name, address}');
  return { name: a.name ?? a.address, address: a.address };
}

function contactInput(input: ContactInput): { displayName: string; givenName?: string; surname?: string; emailAddresses: Address[] } {
  if (!input || typeof input.displayName !== 'string' || !input.displayName.trim()) throw new AdminError(400, 'displayName (string) is required');
  if (!Array.isArray(input.emailAddresses)) throw new AdminError(400, 'emailAddresses must be an array of "someone@example.com" or {name, address}');
  return { displayName: input.displayName, givenName: input.givenName, surname: input.surname, emailAddresses: input.emailAddresses.map(addressOf) };
}
