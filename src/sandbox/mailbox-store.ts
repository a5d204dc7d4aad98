import { createHash, randomBytes } from 'node:crypto';
import { makeEvent, type NewEvent, type StoredEvent } from './calendar.ts';
import { generatedAttachmentBytes, type Address, type AttachmentInput, type GeneratedMessage, type MessageHeader } from './mailbox-generator.ts';

/**
 * One user's mailbox: folders, messages and a change log for delta.
 *
 * Every change bumps the mailbox's `seq`; a message records the seq of its
 * last change, and a message leaving a folder (move, delete) leaves a
 * tombstone with the seq. A delta watermark is just a seq, so a later round
 * returns what changed after it, whatever happened in between.
 *
 * Ids: a message has an immutable id (stays for life) and a REST id that
 * changes when it moves, as Outlook's default ids do
 * [graph outlook-immutable-id].
 */

export const WELL_KNOWN_FOLDERS = [
  ['msgfolderroot', 'Top of Information Store'],
  ['inbox', 'Inbox'],
  ['archive', 'Archive'],
  ['deleteditems', 'Deleted Items'],
  ['drafts', 'Drafts'],
  ['junkemail', 'Junk Email'],
  ['sentitems', 'Sent Items'],
  ['outbox', 'Outbox'],
  ['conversationhistory', 'Conversation History'],
] as const;

export interface StoredFolder {
  id: string;
  displayName: string;
  parentFolderId: string;
  wellKnownName?: string;
  isHidden: boolean;
  createdSeq: number;
}

export interface StoredMessage {
  immutableId: string;
  id: string;
  folderId: string;
  seq: number;
  /** Seq at which it entered its current folder (created there or moved in). */
  folderSeq: number;
  moves: number;
  createdDateTime: string;
  lastModifiedDateTime: string;
  receivedDateTime: string;
  sentDateTime: string;
  subject: string;
  bodyContentType: 'html' | 'text';
  body: string;
  importance: 'low' | 'normal' | 'high';
  isRead: boolean;
  isDraft: boolean;
  hasAttachments: boolean;
  flagStatus: 'notFlagged' | 'flagged' | 'complete';
  categories: string[];
  from: Address;
  to: Address[];
  cc: Address[];
  conversationId: string;
  internetMessageId: string;
  changeKey: string;
  replyTo?: Address[];
  /** Headers it arrived with beyond the standard ones (src/sandbox/message-headers.ts adds those). */
  internetMessageHeaders?: MessageHeader[];
  attachments?: StoredAttachment[];
}

/** A fileAttachment. Bytes are kept (base64) only when they were given; generated ones are made on demand. */
export interface StoredAttachment {
  id: string;
  name: string;
  contentType: string;
  size: number;
  isInline: boolean;
  contentId?: string;
  lastModifiedDateTime: string;
  contentBytes?: string;
  generated?: number;
}

/** A personal contact in the default Contacts folder. */
export interface StoredContact {
  id: string;
  seq: number;
  changeKey: string;
  createdDateTime: string;
  lastModifiedDateTime: string;
  displayName: string;
  givenName: string;
  surname: string;
  emailAddresses: Address[];
}

export interface NewContact {
  displayName: string;
  givenName?: string;
  surname?: string;
  emailAddresses: Address[];
}

export interface Tombstone {
  folderId: string;
  id: string;
  immutableId: string;
  seq: number;
  reason: 'deleted' | 'changed';
}

export interface MailboxData {
  upn: string;
  seq: number;
  salt: string;
  folders: StoredFolder[];
  messages: StoredMessage[];
  tombstones: Tombstone[];
  events?: StoredEvent[];
  contacts?: StoredContact[];
  /** Deleted contacts: {id, seq} (contacts delta reports them as @removed). */
  contactTombstones?: { id: string; seq: number }[];
}

function hashId(prefix: string, ...parts: string[]): string {
  const digest = createHash('sha256').update(parts.join('\u0000')).digest();
  // Outlook ids are long base64 strings; keep them URL-safe and end with '='.
  return prefix + digest.toString('base64url') + digest.subarray(0, 12).toString('base64url') + '=';
}

function changeKeyOf(seq: number, salt: string): string {
  return 'CQAAABYAAA' + createHash('sha1').update(`${salt}:${seq}`).digest('base64').slice(0, 22);
}

export class Mailbox {
  readonly upn: string;
  seq: number;
  readonly salt: string;
  readonly folders = new Map<string, StoredFolder>();
  private readonly wellKnown = new Map<string, string>();
  readonly messages = new Map<string, StoredMessage>(); // by immutableId
  private readonly restIndex = new Map<string, string>(); // rest id -> immutableId (current and old ids)
  private readonly byFolder = new Map<string, Set<string>>();
  tombstones: Tombstone[];
  readonly events = new Map<string, StoredEvent>();
  readonly contacts = new Map<string, StoredContact>();
  contactTombstones: { id: string; seq: number }[];
  /** Called after every mutation (persistence hook). */
  onChange: () => void = () => {};

  constructor(data: MailboxData) {
    this.upn = data.upn;
    this.seq = data.seq;
    this.salt = data.salt;
    this.tombstones = data.tombstones;
    for (const f of data.folders) this.indexFolder(f);
    for (const m of data.messages) {
      // A state file from before attachments were stored: give such messages their file, so the two agree.
      if (m.hasAttachments && !m.attachments) m.attachments = this.storeAttachments(undefined, String(m.seq), m.createdDateTime);
      this.indexMessage(m);
    }
    for (const e of data.events ?? []) this.events.set(e.id, e);
    for (const c of data.contacts ?? []) this.contacts.set(c.id, c);
    this.contactTombstones = data.contactTombstones ?? [];
  }

  static create(upn: string, salt = randomBytes(8).toString('hex')): Mailbox {
    const box = new Mailbox({ upn, seq: 1, salt, folders: [], messages: [], tombstones: [] });
    const rootId = hashId('AQMkAD', salt, 'folder', 'msgfolderroot');
    for (const [name, displayName] of WELL_KNOWN_FOLDERS) {
      const id = name === 'msgfolderroot' ? rootId : hashId('AQMkAD', salt, 'folder', name);
      box.indexFolder({
        id, displayName, wellKnownName: name, isHidden: name === 'conversationhistory' ? false : false,
        parentFolderId: name === 'msgfolderroot' ? hashId('AQMkAD', salt, 'folder', 'root') : rootId, createdSeq: 0,
      });
    }
    return box;
  }

  toJSON(): MailboxData {
    return {
      upn: this.upn, seq: this.seq, salt: this.salt, folders: [...this.folders.values()],
      messages: [...this.messages.values()], tombstones: this.tombstones, events: [...this.events.values()],
      contacts: [...this.contacts.values()], contactTombstones: this.contactTombstones,
    };
  }

  private indexFolder(f: StoredFolder): void {
    this.folders.set(f.id, f);
    if (f.wellKnownName) this.wellKnown.set(f.wellKnownName, f.id);
    if (!this.byFolder.has(f.id)) this.byFolder.set(f.id, new Set());
  }

  private indexMessage(m: StoredMessage): void {
    this.messages.set(m.immutableId, m);
    this.restIndex.set(m.id, m.immutableId);
    this.restIndex.set(m.immutableId, m.immutableId);
    let set = this.byFolder.get(m.folderId);
    if (!set) this.byFolder.set(m.folderId, (set = new Set()));
    set.add(m.immutableId);
  }

  private nextSeq(): number {
    this.seq += 1;
    return this.seq;
  }

  get rootId(): string {
    return this.wellKnown.get('msgfolderroot') as string;
  }

  /** A folder by id or well-known name (case-insensitive), or undefined. */
  folder(idOrName: string): StoredFolder | undefined {
    const byName = this.wellKnown.get(idOrName.toLowerCase());
    return this.folders.get(byName ?? idOrName);
  }

  childFolders(parentId: string): StoredFolder[] {
    return [...this.folders.values()].filter((f) => f.parentFolderId === parentId && f.id !== parentId);
  }

  folderCounts(folderId: string): { total: number; unread: number; children: number } {
    const set = this.byFolder.get(folderId);
    let unread = 0;
    if (set) for (const key of set) if (!this.messages.get(key)?.isRead) unread++;
    return { total: set?.size ?? 0, unread, children: this.childFolders(folderId).length };
  }

  createFolder(parentId: string, displayName: string, isHidden = false): StoredFolder {
    const seq = this.nextSeq();
    const f: StoredFolder = {
      id: hashId('AAMkAD', this.salt, 'folder', parentId, displayName, String(seq)),
      displayName, parentFolderId: parentId, isHidden, createdSeq: seq,
    };
    this.indexFolder(f);
    this.onChange();
    return f;
  }

  /** A message by current REST id, an old REST id, or immutable id. */
  message(id: string): StoredMessage | undefined {
    const key = this.restIndex.get(id);
    if (!key) return undefined;
    const m = this.messages.get(key);
    // Old REST ids stop working after a move, as in Outlook; immutable ids always work.
    if (!m || (id !== m.id && id !== m.immutableId)) return undefined;
    return m;
  }

  messagesIn(folderId: string): StoredMessage[] {
    const set = this.byFolder.get(folderId);
    if (!set) return [];
    const out: StoredMessage[] = [];
    for (const key of set) {
      const m = this.messages.get(key);
      if (m) out.push(m);
    }
    return out;
  }

  allMessages(): StoredMessage[] {
    return [...this.messages.values()];
  }

  addMessage(g: Omit<GeneratedMessage, 'kind'> & { isDraft?: boolean; sentDateTime?: string }, folderId: string, nowIso: string): StoredMessage {
    const seq = this.nextSeq();
    const serial = `${seq}`;
    const immutableId = hashId('AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A', this.salt, 'msg', serial);
    const m: StoredMessage = {
      immutableId,
      id: hashId('AAMkAGI2TG93AAA', this.salt, 'rest', serial, '0'),
      folderId, seq, folderSeq: seq, moves: 0,
      createdDateTime: g.receivedDateTime < nowIso ? g.receivedDateTime : nowIso,
      lastModifiedDateTime: g.receivedDateTime < nowIso ? g.receivedDateTime : nowIso,
      receivedDateTime: g.receivedDateTime,
      sentDateTime: g.sentDateTime ?? new Date(Date.parse(g.receivedDateTime) - 4000).toISOString().replace('.000Z', 'Z'),
      subject: g.subject, bodyContentType: g.bodyContentType, body: g.body, importance: g.importance,
      isRead: g.isRead, isDraft: g.isDraft ?? false, hasAttachments: g.hasAttachments, flagStatus: g.flagStatus,
      categories: [...g.categories], from: g.from, to: g.to, cc: g.cc,
      conversationId: hashId('AAQkAGI2', this.salt, 'conv', g.subject.replace(/^(re|fw|fwd):\s*/i, '').toLowerCase()),
      internetMessageId: `<${createHash('sha1').update(this.salt + serial).digest('hex').slice(0, 24)}@${g.from.address.split('@')[1] ?? 'mail.example'}>`,
      changeKey: changeKeyOf(seq, this.salt),
      // Always present (undefined when empty), so every message has the same shape: 50,000 of them stay compact.
      replyTo: g.replyTo?.length ? g.replyTo : undefined,
      internetMessageHeaders: g.internetMessageHeaders?.length ? g.internetMessageHeaders.map((h) => ({ name: h.name, value: h.value })) : undefined,
      attachments: undefined,
    };
    if (g.attachments?.length || g.hasAttachments) {
      m.attachments = this.storeAttachments(g.attachments, serial, m.createdDateTime);
      // Graph's hasAttachments leaves inline attachments out (docs/microsoft-notes.md, "Headers, attachments…").
      m.hasAttachments = m.attachments.some((a) => !a.isInline);
    }
    this.indexMessage(m);
    this.onChange();
    return m;
  }

  /**
   * Attachments as stored. A message said to have attachments but given none gets one generated file, so
   * hasAttachments and GET …/attachments always agree.
   */
  private storeAttachments(input: AttachmentInput[] | undefined, serial: string, nowIso: string): StoredAttachment[] {
    const list = input?.length ? input : [{ name: 'attachment.pdf', contentType: 'application/pdf', generated: Number(serial) }];
    return list.map((a, i) => {
      const bytes = a.content === undefined ? undefined : Buffer.isBuffer(a.content) ? a.content : Buffer.from(a.content, 'base64');
      const generated = bytes ? undefined : a.generated ?? Number(serial) * 31 + i;
      const size = bytes ? bytes.length : generatedAttachmentBytes(a.name, a.contentType, generated!).length;
      return {
        id: hashId('AAMkAGI2TG93AAABEgAQA', this.salt, 'att', serial, String(i)), name: a.name, contentType: a.contentType, size,
        isInline: a.isInline === true, ...(a.contentId ? { contentId: a.contentId } : {}), lastModifiedDateTime: nowIso,
        ...(bytes ? { contentBytes: bytes.toString('base64') } : { generated }),
      };
    });
  }

  /** Apply a change to a message and bump its seq, lastModified and changeKey. */
  touch(m: StoredMessage, nowIso: string): void {
    m.seq = this.nextSeq();
    m.lastModifiedDateTime = nowIso;
    m.changeKey = changeKeyOf(m.seq, this.salt);
    this.onChange();
  }

  moveMessage(m: StoredMessage, destId: string, nowIso: string): StoredMessage {
    if (destId === m.folderId) {
      this.touch(m, nowIso);
      return m;
    }
    const seq = this.nextSeq();
    // Moved out: the item still exists elsewhere, so 'changed' rather than 'deleted'.
    this.tombstones.push({ folderId: m.folderId, id: m.id, immutableId: m.immutableId, seq, reason: 'changed' });
    this.byFolder.get(m.folderId)?.delete(m.immutableId);
    m.moves += 1;
    m.id = hashId('AAMkAGI2TG93AAA', this.salt, 'rest', m.immutableId, String(m.moves));
    m.folderId = destId;
    this.touch(m, nowIso);
    m.folderSeq = m.seq;
    this.indexMessage(m);
    return m;
  }

  copyMessage(m: StoredMessage, destId: string, nowIso: string): StoredMessage {
    const copy = this.addMessage({
      subject: m.subject, bodyContentType: m.bodyContentType, body: m.body, from: m.from, to: m.to, cc: m.cc,
      receivedDateTime: m.receivedDateTime, sentDateTime: m.sentDateTime, importance: m.importance, isRead: m.isRead,
      hasAttachments: m.hasAttachments, categories: m.categories, flagStatus: m.flagStatus, isDraft: m.isDraft,
      replyTo: m.replyTo, internetMessageHeaders: m.internetMessageHeaders, attachments: m.attachments?.map(attachmentInput),
    }, destId, nowIso);
    copy.conversationId = m.conversationId;
    copy.internetMessageId = m.internetMessageId;
    return copy;
  }

  /** Hard delete (DELETE on the item removes it; it does not go to Deleted Items). */
  deleteMessage(m: StoredMessage): void {
    const seq = this.nextSeq();
    this.tombstones.push({ folderId: m.folderId, id: m.id, immutableId: m.immutableId, seq, reason: 'deleted' });
    this.byFolder.get(m.folderId)?.delete(m.immutableId);
    this.messages.delete(m.immutableId);
    this.onChange();
  }

  addEvent(input: NewEvent, nowIso: string): StoredEvent {
    const e = makeEvent(input, this.salt, this.nextSeq(), nowIso);
    this.events.set(e.id, e);
    this.onChange();
    return e;
  }

  clearEvents(): void {
    this.events.clear();
    this.onChange();
  }

  /** Events by start time. */
  allEvents(): StoredEvent[] {
    return [...this.events.values()].sort((a, b) => a.start.localeCompare(b.start));
  }

  /** The default Contacts folder's id (contacts delta is per contact folder). */
  get contactsFolderId(): string {
    return hashId('AQMkAD', this.salt, 'folder', 'contacts');
  }

  addContact(input: NewContact, nowIso: string): StoredContact {
    const seq = this.nextSeq();
    const [first = '', ...rest] = input.displayName.split(' ');
    const c: StoredContact = {
      id: hashId('AAMkAGI2TG93AAABEgAZA', this.salt, 'contact', String(seq)), seq, changeKey: changeKeyOf(seq, this.salt),
      createdDateTime: nowIso, lastModifiedDateTime: nowIso, displayName: input.displayName,
      givenName: input.givenName ?? first, surname: input.surname ?? rest.join(' '),
      emailAddresses: input.emailAddresses.map((a) => ({ name: a.name || a.address, address: a.address })),
    };
    this.contacts.set(c.id, c);
    this.onChange();
    return c;
  }

  updateContact(c: StoredContact, change: Partial<NewContact>, nowIso: string): StoredContact {
    if (change.displayName !== undefined) c.displayName = change.displayName;
    if (change.givenName !== undefined) c.givenName = change.givenName;
    if (change.surname !== undefined) c.surname = change.surname;
    if (change.emailAddresses) c.emailAddresses = change.emailAddresses.map((a) => ({ name: a.name || a.address, address: a.address }));
    c.seq = this.nextSeq();
    c.changeKey = changeKeyOf(c.seq, this.salt);
    c.lastModifiedDateTime = nowIso;
    this.onChange();
    return c;
  }

  deleteContact(c: StoredContact): void {
    this.contactTombstones.push({ id: c.id, seq: this.nextSeq() });
    this.contacts.delete(c.id);
    this.onChange();
  }

  /** Tombstones of a folder with seq in (from, to]. */
  tombstonesIn(folderId: string, from: number, to: number): Tombstone[] {
    return this.tombstones.filter((t) => t.folderId === folderId && t.seq > from && t.seq <= to);
  }
}

/** A stored attachment as input again (copy and forward keep the same files). */
export function attachmentInput(a: StoredAttachment): AttachmentInput {
  return {
    name: a.name, contentType: a.contentType, isInline: a.isInline, contentId: a.contentId,
    ...(a.contentBytes !== undefined ? { content: a.contentBytes } : { generated: a.generated }),
  };
}

/** The bytes of a stored attachment. */
export function attachmentBytes(a: StoredAttachment): Buffer {
  return a.contentBytes !== undefined ? Buffer.from(a.contentBytes, 'base64') : generatedAttachmentBytes(a.name, a.contentType, a.generated ?? 0);
}
