/**
 * Sandbox control, in process (`sandbox.admin`) and over HTTP for other
 * processes. HTTP routes (JSON, loopback clients only, no auth):
 *
 *   GET  /_sandbox/info                           tenant, client ids, users (no passwords of real systems: these are fakes)
 *   GET  /_sandbox/mailbox/:upn/messages?folder=inbox   stored messages (all folders when no folder), with folder name
 *   POST /_sandbox/mailbox/:upn/messages          deliver a message {subject, from?, body?, folder?, isRead?, ...} -> 201 message
 *   GET  /_sandbox/mailbox/:upn/folders           folders with counts
 *   POST /_sandbox/mailbox/:upn/generate          {count, seed?} replace the mailbox with a generated one
 *   GET  /_sandbox/log                            {tokenRequests, graphRequests}
 *   POST /_sandbox/log/clear                      empty both logs
 *   POST /_sandbox/inject/token-error             {upn|'*' as target, status, error, aadsts?, suberror?, description?, retryAfter?, times?}
 *   POST /_sandbox/revoke/:upn                    revoke every grant of the user (next refresh: invalid_grant AADSTS50173)
 *   POST /_sandbox/options                        {revokeOnReuse?, latencyMs?, subRequestMs?, maxConcurrentPerMailbox?}
 *                                                  latencyMs: every HTTP request ($batch once); subRequestMs: each
 *                                                  $batch sub-request, holding a mailbox slot
 *   POST /_sandbox/clock                          {offsetMs} shift the sandbox clock (token expiry tests)
 *   POST /_sandbox/delta/expire                   every delta token answers 410 SyncStateNotFound afterwards
 *   POST /_sandbox/policy                         {clientId, mailboxes: [upn]|null, state?: 'on'|'propagating'} application access policy
 *   POST /_sandbox/rbac                           {clientId, mailboxes: [upn]|null, roles: ['Mail.ReadWrite', …], state?} RBAC for Applications scope
 *   POST /_sandbox/apps/:clientId/certificates    {pem} or {key: base64 DER} or a keyCredentials JSON: register a certificate -> 201
 *   DELETE /_sandbox/apps/:clientId/certificates  remove every certificate of the app
 *   POST /_sandbox/apps/:clientId/roles           {roles: [..]|null} application permissions with admin consent (null: the registration's)
 *   POST /_sandbox/apps/:clientId/secret          {expired: boolean} the client secret answers AADSTS7000222 while expired
 *   POST /_sandbox/apps/:clientId/registration  {publicClientFlows?, audience?: AzureADMyOrg|AzureADMultipleOrgs|
 *                                                  AzureADandPersonalMicrosoftAccount, redirectUris?: [{uri, platform: web|spa|
 *                                                  publicClient}]} change the app's Authentication settings ({} or null body
 *                                                  fields keep theirs); GET shows them; DELETE puts the defaults back
 *   POST /_sandbox/conditional-access/:upn        {blocked: boolean} a Conditional Access policy blocks (or stops blocking) the
 *                                                  user's refreshes with AADSTS53003; the grant survives
 *   POST /_sandbox/reset                          reseed mailboxes, forget grants and tokens, clear injections and logs
 *   POST /_sandbox/inject/fault                   {kind: 429|503|reset|malformed|latency, times?, after?, match?: {method?, pathContains?},
 *                                                  retryAfter?, latencyMs?} the next matching Graph requests fail (see faults.ts)
 *   GET  /_sandbox/faults                         {pending, fired: {kind: count}}
 *   POST /_sandbox/faults/clear                   drop pending faults, zero the counters
 *   GET  /_sandbox/mailbox/:upn/events            calendar events (start/end in UTC)
 *   POST /_sandbox/mailbox/:upn/events            {subject, start, end (ISO with offset), location?, organizer?, isAllDay?, body?} -> 201 event
 *   DELETE /_sandbox/mailbox/:upn/events          remove every event (the seeded sample week included)
 *                                                  (an event with deliverAt: ISO arrives then, as an invitation over time;
 *                                                  attendees?, responseStatus?, recurrence? {type, interval?, count}: see calendar.ts)
 *   PATCH /_sandbox/mailbox/:upn/events/:id        the organizer changes a meeting {start?, end?, location?, subject?, isCancelled?}
 *   POST /_sandbox/mailbox/:upn/events/:id/respond {response: accept|tentativelyAccept|decline} the person answers by hand
 *   DELETE /_sandbox/mailbox/:upn/events/:id       delete an event, a series or one occurrence (delta reports @removed)
 *   GET  /_sandbox/mailbox/:upn/responses          every response sent (by the agent through Graph, or by hand), oldest first
 *   (one message's headers and attachments, contacts, OneDrive files, the request budget: src/sandbox/admin-extensions.ts)
 */
import express, { type Request, type Response, type NextFunction } from 'express';
import * as access from './access-control.ts';
import { registrationOf, setRegistration, type RegistrationSettings } from './registration.ts';
import type { GraphRequestLogEntry, InjectedTokenError, SandboxContext, TokenRequestLogEntry } from './context.ts';
import { findApp, findUser, SANDBOX_USERS } from './directory.ts';
import { textOf } from './mailbox-generator.ts';
import type { StoredMessage } from './mailbox-store.ts';
import type { FaultKind, FaultSpec } from './faults.ts';
import { createExtensionAdmin, deliveryExtras, mountExtensionRoutes, resetExtensions, type DeliveryExtras, type ExtensionAdmin } from './admin-extensions.ts';
import { CalendarError, changeEvent, removeEvent, respond, responsesOf, type EventOverride, type NewEvent, type ResponseRecord, type StoredEvent } from './calendar.ts';

export interface AdminMessage {
  id: string;
  immutableId: string;
  folderId: string;
  folder: string;
  subject: string;
  from: string;
  receivedDateTime: string;
  isRead: boolean;
  flagStatus: string;
  categories: string[];
  importance: string;
  hasAttachments: boolean;
  bodyPreview: string;
}

export interface AdminFolder {
  id: string;
  displayName: string;
  wellKnownName?: string;
  parentFolderId: string;
  path: string;
  totalItemCount: number;
  unreadItemCount: number;
}

/** Also internetMessageHeaders, attachments and replyTo (src/sandbox/admin-extensions.ts). */
export interface DeliverMessageInput extends DeliveryExtras {
  subject: string;
  from?: string | { name?: string; address: string };
  body?: string;
  bodyContentType?: 'html' | 'text';
  folder?: string;
  isRead?: boolean;
  importance?: 'low' | 'normal' | 'high';
  hasAttachments?: boolean;
  receivedDateTime?: string;
  categories?: string[];
}

/** Headers, attachments, contacts, OneDrive and the request budget: src/sandbox/admin-extensions.ts. */
export interface SandboxAdmin extends ExtensionAdmin {
  messages(upn: string, folderWellKnownOrId?: string): AdminMessage[];
  folders(upn: string): AdminFolder[];
  /** Put a new message into a folder (default inbox) as if it had arrived. */
  deliver(upn: string, input: DeliverMessageInput): AdminMessage;
  /** Replace a mailbox with `count` generated inbox messages (large-mailbox tests). */
  generate(upn: string, count: number, seed?: number): void;
  tokenRequests(): TokenRequestLogEntry[];
  graphRequests(): GraphRequestLogEntry[];
  clearLogs(): void;
  injectTokenError(target: string, error: InjectedTokenError, times?: number): void;
  /**
   * A Conditional Access policy starts (true) or stops (false) blocking the user's tokens: every refresh answers
   * invalid_grant AADSTS53003 until lifted. The grant itself survives, as with a real location or device policy.
   */
  setConditionalAccessBlock(upn: string, blocked: boolean): void;
  revokeGrants(upn: string): void;
  setRevokeOnReuse(on: boolean): void;
  /** Every HTTP request waits `ms` (a `$batch` once, not per sub-request). */
  setLatency(ms: number): void;
  /** Each `$batch` sub-request takes `ms` while it holds one of the mailbox's concurrency slots. */
  setSubRequestMs(ms: number): void;
  setMaxConcurrency(n: number): void;
  /** Shift the sandbox clock by `offsetMs` from real time (only when no custom `now` was given). */
  setClockOffset(offsetMs: number): void;
  expireDeltaTokens(): void;
  /** ApplicationAccessPolicy: `propagating` = created but not enforced yet (real ones take up to hours). */
  setAccessPolicy(clientId: string, mailboxes: string[] | null, state?: access.EnforcementState): void;
  /** RBAC for Applications: a management scope over `mailboxes` with "Application <role>" assignments. */
  setRbacScope(clientId: string, grant: { mailboxes: string[]; roles: string[]; state?: access.EnforcementState } | null): void;
  registerCertificate(clientId: string, input: { pem?: string; key?: string }): access.RegisteredCertificate;
  removeCertificates(clientId: string): void;
  /** The application permissions with admin consent (null: all of the registration's). */
  setGrantedRoles(clientId: string, roles: string[] | null): void;
  setSecretExpired(clientId: string, expired: boolean): void;
  /**
   * Changes an app's Authentication settings, so Entra's registration errors happen for real: public client flows
   * off (device code polls answer AADSTS7000218), single-tenant (AADSTS50194 at /common), a redirect URI under
   * "Single-page application" (AADSTS9002327 without Origin). Settings not given keep their value; null: defaults.
   */
  setAppRegistration(clientId: string, settings: RegistrationSettings | null): Required<RegistrationSettings>;
  appRegistration(clientId: string): Required<RegistrationSettings>;
  reset(): void;
  /** The next matching Graph requests (or batch sub-requests) fail as `spec` says. */
  injectFault(spec: FaultSpec): void;
  clearFaults(): void;
  faults(): { pending: number; fired: Record<FaultKind, number> };
  /** Put an event on the user's calendar. */
  addEvent(upn: string, input: NewEvent): StoredEvent;
  /** Removes every event of the user's calendar, the seeded sample week included (tests that count events). */
  clearEvents(upn: string): void;
  events(upn: string): StoredEvent[];
  /** The organizer changes a meeting (or one occurrence): delta shows it changed. */
  updateEvent(upn: string, id: string, change: Pick<EventOverride, 'start' | 'end' | 'location' | 'subject' | 'isCancelled'>): void;
  /** The person answers an invitation by hand in Outlook. */
  respondAsPerson(upn: string, id: string, response: 'accept' | 'tentativelyAccept' | 'decline'): void;
  removeEvent(upn: string, id: string): void;
  /** Every response sent for the user's events, oldest first. */
  responses(upn: string): ResponseRecord[];
}

export function createAdmin(ctx: SandboxContext, clock: { offsetMs: number }): SandboxAdmin {
  const box = (upn: string) => {
    const user = findUser(upn);
    const b = user && ctx.state.mailbox(user.upn);
    if (!b) throw new AdminError(404, `No sandbox mailbox '${upn}'. Known: ${SANDBOX_USERS.map((u) => u.upn).join(', ')}`);
    return b;
  };
  const view = (upn: string, m: StoredMessage): AdminMessage => {
    const f = box(upn).folders.get(m.folderId);
    return {
      id: m.id, immutableId: m.immutableId, folderId: m.folderId, folder: f?.wellKnownName ?? f?.displayName ?? '',
      subject: m.subject, from: m.from.address, receivedDateTime: m.receivedDateTime, isRead: m.isRead, flagStatus: m.flagStatus,
      categories: m.categories, importance: m.importance, hasAttachments: m.hasAttachments,
      bodyPreview: textOf(m.bodyContentType, m.body).slice(0, 255),
    };
  };
  const pathOf = (upn: string, id: string): string => {
    const b = box(upn);
    const parts: string[] = [];
    let f = b.folders.get(id);
    while (f && f.id !== b.rootId) {
      parts.unshift(f.displayName);
      f = b.folders.get(f.parentFolderId);
    }
    return parts.join('/');
  };
  return {
    ...createExtensionAdmin(ctx),
    messages(upn, folder) {
      const b = box(upn);
      let list = b.allMessages();
      if (folder) {
        const f = b.folder(folder) ?? [...b.folders.values()].find((x) => pathOf(upn, x.id).toLowerCase() === folder.toLowerCase());
        if (!f) throw new AdminError(404, `No folder '${folder}' in ${upn}`);
        list = b.messagesIn(f.id);
      }
      return list.sort((x, y) => y.receivedDateTime.localeCompare(x.receivedDateTime)).map((m) => view(upn, m));
    },
    folders(upn) {
      const b = box(upn);
      return [...b.folders.values()].map((f) => {
        const c = b.folderCounts(f.id);
        return {
          id: f.id, displayName: f.displayName, wellKnownName: f.wellKnownName, parentFolderId: f.parentFolderId,
          path: pathOf(upn, f.id), totalItemCount: c.total, unreadItemCount: c.unread,
        };
      });
    },
    deliver(upn, input) {
      const b = box(upn);
      const f = b.folder(input.folder ?? 'inbox');
      if (!f) throw new AdminError(404, `No folder '${input.folder}' in ${upn}`);
      const from = typeof input.from === 'string' ? { name: input.from, address: input.from }
        : input.from ? { name: input.from.name ?? input.from.address, address: input.from.address }
          : { name: 'Sender', address: 'sender@example.com' };
      const nowIso = new Date(ctx.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const m = b.addMessage({
        subject: input.subject, from, to: [{ name: upn, address: upn }], cc: [],
        bodyContentType: input.bodyContentType ?? 'text', body: input.body ?? '', receivedDateTime: input.receivedDateTime ?? nowIso,
        importance: input.importance ?? 'normal', isRead: input.isRead ?? false, hasAttachments: input.hasAttachments ?? false,
        categories: input.categories ?? [], flagStatus: 'notFlagged', ...deliveryExtras(input),
      }, f.id, nowIso);
      return view(upn, m);
    },
    generate(upn, count, seed) {
      const user = findUser(upn);
      if (!user) throw new AdminError(404, `No sandbox user '${upn}'`);
      ctx.state.regenerate(user.upn, count, seed);
    },
    tokenRequests: () => [...ctx.tokenLog],
    graphRequests: () => [...ctx.graphLog],
    clearLogs() {
      ctx.tokenLog.length = 0;
      ctx.graphLog.length = 0;
    },
    injectTokenError(target, error, times = 1) {
      ctx.injections.push({ target: target === '*' ? '*' : target.toLowerCase(), error, remaining: times });
    },
    setConditionalAccessBlock(upn, blocked) {
      const target = upn.toLowerCase();
      ctx.injections = ctx.injections.filter((i) => !(i.target === target && i.error.aadsts === 53003));
      if (blocked) ctx.injections.push({ target, error: { status: 400, error: 'invalid_grant', aadsts: 53003 }, remaining: Number.POSITIVE_INFINITY });
    },
    revokeGrants(upn) {
      const user = findUser(upn);
      if (!user) throw new AdminError(404, `No sandbox user '${upn}'`);
      const now = ctx.now();
      for (const g of ctx.state.data.grants) if (g.oid === user.oid && g.revokedAt === undefined) {
        g.revokedAt = now;
        g.revokeReason = 'admin';
      }
      ctx.state.data.tokensValidFrom[user.upn] = now;
      ctx.state.changed();
    },
    setRevokeOnReuse(on) {
      ctx.state.data.revokeOnReuse = on;
      ctx.state.changed();
    },
    setLatency(ms) {
      ctx.latencyMs = Math.max(0, ms);
    },
    setSubRequestMs(ms) {
      ctx.subRequestMs = Math.max(0, ms);
    },
    setMaxConcurrency(n) {
      ctx.maxConcurrentPerMailbox = Math.max(1, n);
    },
    setClockOffset(offsetMs) {
      clock.offsetMs = offsetMs;
    },
    expireDeltaTokens() {
      ctx.state.data.deltaGeneration = (ctx.state.data.deltaGeneration ?? 0) + 1;
      ctx.state.changed();
    },
    setAccessPolicy(clientId, mailboxes, state = 'on') {
      if (ctx.state.data.appAccessPolicy) delete ctx.state.data.appAccessPolicy[clientId];
      access.setAccessPolicy(ctx, clientId, mailboxes === null ? null : { mailboxes, state });
    },
    setRbacScope: (clientId, grant) => access.setRbacScope(ctx, clientId, grant),
    registerCertificate: (clientId, input) => access.registerCertificate(ctx, clientId, input),
    removeCertificates: (clientId) => access.removeCertificates(ctx, clientId),
    setGrantedRoles: (clientId, roles) => access.setGrantedRoles(ctx, clientId, roles),
    setSecretExpired: (clientId, expired) => access.setSecretExpired(ctx, clientId, expired),
    setAppRegistration(clientId, settings) {
      if (!findApp(clientId)) throw new AdminError(404, `No sandbox app '${clientId}'.`);
      const { publicClientFlows, audience, redirectUris } = setRegistration(ctx, clientId, settings);
      return { publicClientFlows, audience, redirectUris };
    },
    appRegistration(clientId) {
      const app = findApp(clientId);
      if (!app) throw new AdminError(404, `No sandbox app '${clientId}'.`);
      const { publicClientFlows, audience, redirectUris } = registrationOf(ctx, app);
      return { publicClientFlows, audience, redirectUris };
    },
    injectFault(spec) {
      ctx.faults.inject(spec);
    },
    clearFaults() {
      ctx.faults.clear();
    },
    faults: () => ({ pending: ctx.faults.pending(), fired: { ...ctx.faults.fired } }),
    addEvent(upn, input) {
      return box(upn).addEvent(input, new Date(ctx.now()).toISOString());
    },
    clearEvents(upn) {
      box(upn).clearEvents();
    },
    events(upn) {
      return box(upn).allEvents();
    },
    updateEvent(upn, id, change) {
      const iso = (v: unknown, k: string) => {
        if (v === undefined) return undefined;
        if (typeof v !== 'string' || Number.isNaN(Date.parse(v))) throw new AdminError(400, `${k} must be an ISO 8601 date-time with an offset`);
        return new Date(v).toISOString();
      };
      calendarCall(() => changeEvent(box(upn), id, { start: iso(change.start, 'start'), end: iso(change.end, 'end'), location: change.location, subject: change.subject, isCancelled: change.isCancelled }, ctx.now()));
    },
    respondAsPerson(upn, id, response) {
      if (!['accept', 'tentativelyAccept', 'decline'].includes(response)) throw new AdminError(400, 'response must be accept, tentativelyAccept or decline');
      calendarCall(() => respond(box(upn), id, response, {}, ctx.now(), 'person'));
    },
    removeEvent(upn, id) {
      calendarCall(() => removeEvent(box(upn), id, ctx.now()));
    },
    responses: (upn) => responsesOf(box(upn)),
    reset() {
      ctx.state.reset();
      ctx.faults.clear();
      ctx.injections.length = 0;
      ctx.tokenLog.length = 0;
      ctx.graphLog.length = 0;
      ctx.latencyMs = 0;
      ctx.subRequestMs = 0;
      clock.offsetMs = 0;
      resetExtensions(ctx);
    },
  };
}

export class AdminError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function loopbackOnly(req: Request, res: Response, next: NextFunction): void {
  const addr = req.socket.remoteAddress ?? '';
  if (addr === '127.0.0.1' || addr === '::1' || addr === '::ffff:127.0.0.1') return next();
  res.status(403).json({ error: 'sandbox admin is reachable from loopback only' });
}

export function createAdminRouter(admin: SandboxAdmin, info: () => unknown): express.Router {
  const r = express.Router();
  r.use(loopbackOnly, express.json({ limit: '1mb' }));
  const wrap = (fn: (req: Request, res: Response) => unknown) => (req: Request, res: Response) => {
    try {
      const out = fn(req, res);
      if (!res.headersSent) res.json(out ?? { ok: true });
    } catch (e) {
      if (e instanceof AdminError) return void res.status(e.status).json({ error: e.message });
      res.status(400).json({ error: (e as Error).message });
    }
  };
  const q = (v: unknown) => (typeof v === 'string' ? v : undefined);
  r.get('/info', wrap(() => info()));
  mountExtensionRoutes(r, admin, wrap);
  r.get('/mailbox/:upn/messages', wrap((req) => admin.messages(String(req.params.upn), q(req.query.folder))));
  r.post('/mailbox/:upn/messages', wrap((req, res) => {
    const body = (req.body ?? {}) as DeliverMessageInput;
    if (typeof body.subject !== 'string') throw new AdminError(400, 'subject (string) is required');
    res.status(201);
    return admin.deliver(String(req.params.upn), body);
  }));
  r.get('/mailbox/:upn/folders', wrap((req) => admin.folders(String(req.params.upn))));
  r.post('/mailbox/:upn/generate', wrap((req) => {
    const body = (req.body ?? {}) as { count?: unknown; seed?: unknown };
    if (typeof body.count !== 'number') throw new AdminError(400, 'count (number) is required');
    admin.generate(String(req.params.upn), body.count, typeof body.seed === 'number' ? body.seed : undefined);
  }));
  r.get('/log', wrap(() => ({ tokenRequests: admin.tokenRequests(), graphRequests: admin.graphRequests() })));
  r.post('/log/clear', wrap(() => admin.clearLogs()));
  r.post('/inject/token-error', wrap((req) => {
    const b = (req.body ?? {}) as Partial<InjectedTokenError> & { target?: string; upn?: string; times?: number };
    if (typeof b.status !== 'number' || typeof b.error !== 'string') throw new AdminError(400, 'status (number) and error (string) are required');
    admin.injectTokenError(b.target ?? b.upn ?? '*', {
      status: b.status, error: b.error, aadsts: b.aadsts, suberror: b.suberror, description: b.description, claims: b.claims,
      ...(typeof b.retryAfter === 'string' ? { retryAfter: b.retryAfter } : {}),
    }, b.times ?? 1);
  }));
  r.post('/revoke/:upn', wrap((req) => admin.revokeGrants(String(req.params.upn))));
  r.post('/conditional-access/:upn', wrap((req) => {
    const b = (req.body ?? {}) as { blocked?: unknown };
    if (typeof b.blocked !== 'boolean') throw new AdminError(400, 'blocked (boolean) is required');
    admin.setConditionalAccessBlock(String(req.params.upn), b.blocked);
  }));
  r.post('/options', wrap((req) => {
    const b = (req.body ?? {}) as { revokeOnReuse?: unknown; latencyMs?: unknown; subRequestMs?: unknown; maxConcurrentPerMailbox?: unknown };
    if (typeof b.revokeOnReuse === 'boolean') admin.setRevokeOnReuse(b.revokeOnReuse);
    if (typeof b.latencyMs === 'number') admin.setLatency(b.latencyMs);
    if (typeof b.subRequestMs === 'number') admin.setSubRequestMs(b.subRequestMs);
    if (typeof b.maxConcurrentPerMailbox === 'number') admin.setMaxConcurrency(b.maxConcurrentPerMailbox);
  }));
  r.post('/clock', wrap((req) => {
    const b = (req.body ?? {}) as { offsetMs?: unknown };
    if (typeof b.offsetMs !== 'number') throw new AdminError(400, 'offsetMs (number) is required');
    admin.setClockOffset(b.offsetMs);
  }));
  r.post('/delta/expire', wrap(() => admin.expireDeltaTokens()));
  const stateOf = (v: unknown): access.EnforcementState => {
    if (v === undefined || v === 'on') return 'on';
    if (v === 'propagating') return 'propagating';
    throw new AdminError(400, "state must be 'on' or 'propagating' (mailboxes: null turns it off)");
  };
  r.post('/policy', wrap((req) => {
    const b = (req.body ?? {}) as { clientId?: unknown; mailboxes?: unknown; state?: unknown };
    if (typeof b.clientId !== 'string') throw new AdminError(400, 'clientId (string) is required');
    admin.setAccessPolicy(b.clientId, Array.isArray(b.mailboxes) ? b.mailboxes.map(String) : null, stateOf(b.state));
  }));
  r.post('/rbac', wrap((req) => {
    const b = (req.body ?? {}) as { clientId?: unknown; mailboxes?: unknown; roles?: unknown; state?: unknown };
    if (typeof b.clientId !== 'string') throw new AdminError(400, 'clientId (string) is required');
    if (!Array.isArray(b.mailboxes)) return admin.setRbacScope(b.clientId, null);
    if (!Array.isArray(b.roles)) throw new AdminError(400, "roles (e.g. ['Mail.ReadWrite']) is required with mailboxes");
    admin.setRbacScope(b.clientId, { mailboxes: b.mailboxes.map(String), roles: b.roles.map(String), state: stateOf(b.state) });
  }));
  r.post('/apps/:clientId/certificates', wrap((req, res) => {
    const b = (req.body ?? {}) as { pem?: unknown; key?: unknown; keyCredentials?: { key?: unknown }[] };
    const key = typeof b.key === 'string' ? b.key : typeof b.keyCredentials?.[0]?.key === 'string' ? b.keyCredentials[0].key : undefined;
    if (typeof b.pem !== 'string' && !key) throw new AdminError(400, 'give pem (a PEM certificate), key (base64 DER) or the keyCredentials JSON of mailbox-agent cert create');
    res.status(201);
    return admin.registerCertificate(String(req.params.clientId), { pem: typeof b.pem === 'string' ? b.pem : undefined, key });
  }));
  r.delete('/apps/:clientId/certificates', wrap((req) => admin.removeCertificates(String(req.params.clientId))));
  r.post('/apps/:clientId/roles', wrap((req) => {
    const b = (req.body ?? {}) as { roles?: unknown };
    admin.setGrantedRoles(String(req.params.clientId), Array.isArray(b.roles) ? b.roles.map(String) : null);
  }));
  r.post('/apps/:clientId/secret', wrap((req) => {
    const b = (req.body ?? {}) as { expired?: unknown };
    if (typeof b.expired !== 'boolean') throw new AdminError(400, 'expired (boolean) is required');
    admin.setSecretExpired(String(req.params.clientId), b.expired);
  }));
  r.get('/apps/:clientId/registration', wrap((req) => admin.appRegistration(String(req.params.clientId))));
  r.post('/apps/:clientId/registration', wrap((req) => admin.setAppRegistration(String(req.params.clientId), (req.body ?? {}) as RegistrationSettings)));
  r.delete('/apps/:clientId/registration', wrap((req) => admin.setAppRegistration(String(req.params.clientId), null)));
  r.post('/reset', wrap(() => admin.reset()));
  r.post('/inject/fault', wrap((req) => admin.injectFault((req.body ?? {}) as FaultSpec)));
  r.get('/faults', wrap(() => admin.faults()));
  r.post('/faults/clear', wrap(() => admin.clearFaults()));
  r.get('/mailbox/:upn/events', wrap((req) => admin.events(String(req.params.upn))));
  r.delete('/mailbox/:upn/events', wrap((req) => admin.clearEvents(String(req.params.upn))));
  r.post('/mailbox/:upn/events', wrap((req, res) => {
    const event = admin.addEvent(String(req.params.upn), (req.body ?? {}) as NewEvent);
    res.status(201);
    return event;
  }));
  r.patch('/mailbox/:upn/events/:id', wrap((req) => admin.updateEvent(String(req.params.upn), String(req.params.id), (req.body ?? {}) as EventOverride)));
  r.post('/mailbox/:upn/events/:id/respond', wrap((req) => admin.respondAsPerson(String(req.params.upn), String(req.params.id), (req.body as { response?: never } | undefined)?.response as never)));
  r.delete('/mailbox/:upn/events/:id', wrap((req) => admin.removeEvent(String(req.params.upn), String(req.params.id))));
  r.get('/mailbox/:upn/responses', wrap((req) => admin.responses(String(req.params.upn))));
  r.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'unknown sandbox admin route; see src/sandbox/admin.ts' });
  });
  return r;
}

/** Runs a calendar change, turning its Graph-style error into the admin API's. */
function calendarCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof CalendarError) throw new AdminError(error.status, error.message);
    throw error;
  }
}
