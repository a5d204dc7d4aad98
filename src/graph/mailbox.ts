import { AgentError } from '../config/errors.ts';
import { toPage, type BatchRequest, type GraphClient, type GraphPage } from './client.ts';
import { GraphError } from './graph-error.ts';

/** Well-known folder names Graph accepts in place of an id [microsoft-graph-docs mailfolder]. */
export const WELL_KNOWN_FOLDERS = new Set([
  'archive', 'clutter', 'conflicts', 'conversationhistory', 'deleteditems', 'drafts', 'inbox', 'junkemail', 'localfailures',
  'msgfolderroot', 'outbox', 'recoverableitemsdeletions', 'scheduled', 'searchfolders', 'sentitems', 'serverfailures', 'syncissues',
]);

export interface MailFolder {
  id: string;
  displayName: string;
  parentFolderId?: string;
}

export interface GraphMessage {
  id: string;
  subject?: string | null;
  receivedDateTime?: string;
  isRead?: boolean;
  categories?: string[];
  flag?: { flagStatus?: string };
  importance?: string;
  parentFolderId?: string;
  '@removed'?: { reason: string };
  [key: string]: unknown;
}

/** Fields a rule can look at; `body` is added only when a rule needs bodyContains. */
export const RULE_SELECT = ['subject', 'from', 'sender', 'toRecipients', 'ccRecipients', 'receivedDateTime', 'hasAttachments', 'importance', 'isRead', 'categories', 'flag', 'parentFolderId'];

/**
 * One mailbox through Graph: `/me` for delegated, `/users/{upn}` for app-only. Jobs use this, never URLs.
 * Example: `const inbox = await mailbox.folder('inbox'); await mailbox.move(id, inbox.id)`.
 */
export class Mailbox {
  private readonly folderCache = new Map<string, Promise<MailFolder>>();

  constructor(readonly graph: GraphClient, readonly root: string) {}

  path(suffix: string): string {
    return `${this.root}${suffix}`;
  }

  /**
   * A folder by well-known name (`inbox`, `archive`, …) or by path from the mailbox root (`Finance/Invoices`).
   * With `create`, each missing level of a path is created.
   */
  folder(nameOrPath: string, options: { create?: boolean } = {}): Promise<MailFolder> {
    const key = `${options.create ? '+' : ''}${nameOrPath.toLowerCase()}`;
    let found = this.folderCache.get(key);
    if (!found) {
      found = this.lookupFolder(nameOrPath, options.create ?? false);
      found.catch(() => this.folderCache.delete(key));
      this.folderCache.set(key, found);
    }
    return found;
  }

  private async lookupFolder(nameOrPath: string, create: boolean): Promise<MailFolder> {
    const segments = nameOrPath.split('/').map((s) => s.trim()).filter(Boolean);
    if (segments.length === 0) throw new AgentError('JOBS_FILE_INVALID', 'An empty folder name was given.', { remedy: 'Name a folder, e.g. inbox or Newsletters.' });
    const first = segments[0]!.toLowerCase();
    if (WELL_KNOWN_FOLDERS.has(first) && segments.length === 1) return (await this.graph.get<MailFolder>(this.path(`/mailFolders/${first}`))).body;
    // Graph takes a well-known name wherever a folder id goes, so a path's first parent costs no request of its own.
    let parentId = WELL_KNOWN_FOLDERS.has(first) ? first : 'msgfolderroot';
    let current: MailFolder | undefined;
    for (const name of WELL_KNOWN_FOLDERS.has(first) ? segments.slice(1) : segments) {
      current = (await this.childFolder(parentId, name)) ?? (create ? await this.createChild(parentId, name) : undefined);
      if (!current) {
        throw new AgentError('JOB_NOT_FOUND', `The folder "${nameOrPath}" does not exist in the mailbox.`, { remedy: 'Check the folder name in the jobs file (paths start at the mailbox root, e.g. Inbox/Receipts).', status: 404 });
      }
      parentId = current.id;
    }
    return current!;
  }

  private async childFolder(parentId: string, name: string): Promise<MailFolder | undefined> {
    const filter = encodeURIComponent(`displayName eq '${name.replace(/'/g, "''")}'`);
    for await (const page of this.graph.pages<MailFolder>(this.path(`/mailFolders/${enc(parentId)}/childFolders?$filter=${filter}&includeHiddenFolders=true`))) {
      const hit = page.value.find((f) => f.displayName.toLowerCase() === name.toLowerCase());
      if (hit) return hit;
    }
    return undefined;
  }

  private async createChild(parentId: string, name: string): Promise<MailFolder> {
    try {
      // Harmless to repeat: a second create of the same name gets 409, handled below.
      return (await this.graph.post<MailFolder>(this.path(`/mailFolders/${enc(parentId)}/childFolders`), { displayName: name }, { idempotent: true })).body;
    } catch (error) {
      // Another run created it between our lookup and our create.
      if (error instanceof GraphError && error.statusCode === 409) {
        const again = await this.childFolder(parentId, name);
        if (again) return again;
      }
      throw error;
    }
  }

  /** The first page of a delta query on a folder's messages; follow `nextLink`/`deltaLink` with `deltaPage`. */
  startDelta(folderId: string, options: { select: string[] }): string {
    return this.path(`/mailFolders/${enc(folderId)}/messages/delta?$select=${options.select.join(',')}`);
  }

  async deltaPage(link: string, options: { maxPageSize?: number; signal?: AbortSignal } = {}): Promise<GraphPage<GraphMessage>> {
    const { body } = await this.graph.get<Record<string, unknown>>(link, {
      headers: options.maxPageSize ? { prefer: `odata.maxpagesize=${options.maxPageSize}` } : undefined,
      signal: options.signal,
    });
    return toPage<GraphMessage>(body, link);
  }

  async message(id: string, select?: string[]): Promise<GraphMessage> {
    return (await this.graph.get<GraphMessage>(this.path(`/messages/${enc(id)}${select ? `?$select=${select.join(',')}` : ''}`))).body;
  }

  async update(id: string, changes: Record<string, unknown>): Promise<GraphMessage> {
    return (await this.graph.patch<GraphMessage>(this.path(`/messages/${enc(id)}`), changes)).body;
  }

  async move(id: string, destinationId: string): Promise<GraphMessage> {
    const r = this.moveRequest(id, destinationId);
    return (await this.graph.post<GraphMessage>(r.url, r.body, { idempotent: true })).body;
  }

  async copy(id: string, destinationId: string): Promise<GraphMessage> {
    const r = this.copyRequest(id, destinationId);
    return (await this.graph.post<GraphMessage>(r.url, r.body)).body;
  }

  async forward(id: string, to: string[], comment = ''): Promise<void> {
    const r = this.forwardRequest(id, to, comment);
    await this.graph.post(r.url, r.body);
  }

  /** The PATCH of a message's properties, for a `$batch`. */
  updateRequest(id: string, changes: Record<string, unknown>): BatchRequest {
    return { method: 'PATCH', url: this.path(`/messages/${enc(id)}`), body: changes };
  }

  /** A move, for a `$batch`: with immutable ids (the client always asks for them) a repeated move finds the message where it went, so it is idempotent. */
  moveRequest(id: string, destinationId: string): BatchRequest {
    return { method: 'POST', url: this.path(`/messages/${enc(id)}/move`), body: { destinationId }, idempotent: true };
  }

  /** A copy, for a `$batch`: once-only (a repeat makes a second copy). */
  copyRequest(id: string, destinationId: string): BatchRequest {
    return { method: 'POST', url: this.path(`/messages/${enc(id)}/copy`), body: { destinationId } };
  }

  /** A message's internetMessageHeaders, for a `$batch` (they come only when `$select`ed: docs/microsoft-notes.md). */
  headersRequest(id: string): BatchRequest {
    return { method: 'GET', url: this.path(`/messages/${enc(id)}?$select=internetMessageHeaders`) };
  }

  /** A message's attachments without their bytes, for a `$batch`. */
  attachmentsRequest(id: string): BatchRequest {
    return { method: 'GET', url: this.path(`/messages/${enc(id)}/attachments?$select=name,contentType,size,isInline`) };
  }

  /**
   * Replies to a message's sender (its replyTo if set), with `html` above the quoted original; once-only. Graph
   * saves the reply in Sent Items (docs/microsoft-notes.md "Reply").
   */
  async reply(id: string, html: string): Promise<void> {
    await this.graph.post(this.path(`/messages/${enc(id)}/reply`), { comment: html });
  }

  /** A forward, for a `$batch`: once-only. */
  forwardRequest(id: string, to: string[], comment = ''): BatchRequest {
    return { method: 'POST', url: this.path(`/messages/${enc(id)}/forward`), body: { comment, toRecipients: to.map((address) => ({ emailAddress: { address } })) } };
  }

  /**
   * Messages of a folder, newest first, page by page (`top` per page, at most 1000), stopping after `limit`.
   * Example: `for await (const m of mailbox.messages('inbox', { select: ['subject'], filter: 'isRead eq false', limit: 50 })) …`.
   */
  async *messages(folder: string, options: { select?: string[]; filter?: string; top?: number; limit?: number; signal?: AbortSignal } = {}): AsyncGenerator<GraphMessage> {
    const f = await this.folder(folder);
    const q = [`$top=${Math.min(options.top ?? 100, 1000)}`];
    if (options.select) q.push(`$select=${options.select.join(',')}`);
    if (options.filter) q.push(`$filter=${encodeURIComponent(options.filter)}`);
    let left = options.limit ?? Infinity;
    for await (const page of this.graph.pages<GraphMessage>(this.path(`/mailFolders/${enc(f.id)}/messages?${q.join('&')}`), { signal: options.signal })) {
      for (const m of page.value) {
        if (left-- <= 0) return;
        yield m;
      }
    }
  }

  /** The child folders of a folder (well-known name or path). */
  async childFolders(folder: string): Promise<MailFolder[]> {
    const f = await this.folder(folder);
    const out: MailFolder[] = [];
    for await (const page of this.graph.pages<MailFolder>(this.path(`/mailFolders/${enc(f.id)}/childFolders?$top=100&includeHiddenFolders=true`))) out.push(...page.value);
    return out;
  }

  async delete(id: string): Promise<void> {
    await this.graph.delete(this.path(`/messages/${enc(id)}`));
  }

  /** The mailbox's own settings; `timeZone` is a Windows (or IANA) zone name [MICROSOFT.md "Graph calendar"]. */
  async settings(): Promise<MailboxSettings> {
    return (await this.graph.get<MailboxSettings>(this.path('/mailboxSettings'))).body;
  }

  /** The mailbox owner's address (for sending mail to oneself). */
  async address(): Promise<string> {
    const me = (await this.graph.get<{ mail?: string | null; userPrincipalName?: string }>(this.root)).body;
    const address = me.mail ?? me.userPrincipalName;
    if (!address) throw new GraphError({ status: 200, code: 'InvalidResponse', message: 'the user has neither mail nor userPrincipalName', method: 'GET', path: this.root });
    return address;
  }

  /**
   * Events overlapping [start, end) via calendarView, with start/end rendered in `timeZone` (`Prefer: outlook.timezone`).
   * Example: `await mailbox.events(dayStart, dayEnd, { timeZone: 'W. Europe Standard Time' })`.
   */
  async events(start: Date, end: Date, options: { timeZone?: string; signal?: AbortSignal } = {}): Promise<CalendarEvent[]> {
    const q = `startDateTime=${encodeURIComponent(start.toISOString())}&endDateTime=${encodeURIComponent(end.toISOString())}&$top=100&$orderby=start/dateTime`;
    const out: CalendarEvent[] = [];
    const headers = options.timeZone ? { prefer: `outlook.timezone="${options.timeZone}"` } : undefined;
    for await (const page of this.graph.pages<CalendarEvent>(this.path(`/calendarView?${q}`), { headers, signal: options.signal })) out.push(...page.value);
    return out.sort((a, b) => a.start.dateTime.localeCompare(b.start.dateTime));
  }

  /** Sends a message from the mailbox (202; a copy goes to Sent Items). */
  async sendMail(message: { to: string[]; subject: string; html: string }): Promise<void> {
    await this.graph.post(this.path('/sendMail'), {
      message: { subject: message.subject, body: { contentType: 'HTML', content: message.html }, toRecipients: message.to.map((address) => ({ emailAddress: { address } })) },
      saveToSentItems: true,
    });
  }
}

export interface MailboxSettings {
  timeZone?: string;
  [key: string]: unknown;
}

export interface CalendarEvent {
  id: string;
  subject?: string | null;
  start: { dateTime: string; timeZone: string };
  end: { dateTime: string; timeZone: string };
  isAllDay?: boolean;
  isCancelled?: boolean;
  showAs?: string;
  location?: { displayName?: string | null };
  organizer?: { emailAddress?: { name?: string; address?: string } };
  webLink?: string;
  [key: string]: unknown;
}

function enc(id: string): string {
  return encodeURIComponent(id);
}
