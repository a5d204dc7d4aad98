import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateContacts, generateMailbox, type GeneratedMessage } from './mailbox-generator.ts';
import { Mailbox, type MailboxData } from './mailbox-store.ts';
import { SANDBOX_USERS } from './directory.ts';
import { ianaZone } from './calendar.ts';
import { daysBetween, sampleDay, utcMidnight } from './sample-calendar.ts';
import type { RedirectPlatform } from './directory.ts';
import type { RegistrationSettings } from './registration.ts';

/** A delegated grant: one sign-in of one user to one app, with its refresh-token family. */
export interface Grant {
  id: string;
  oid: string;
  clientId: string;
  scopes: string[];
  sid: string;
  authTime: number;
  createdAt: number;
  revokedAt?: number;
  revokeReason?: 'admin' | 'reuse';
  /**
   * The platform of the redirect URI the grant's code was issued to: a "Single-page application" grant is
   * refreshed only cross-origin and lives 24 hours from sign-in (AADSTS700084) [entra-docs refresh-tokens].
   */
  platform?: RedirectPlatform;
}

/**
 * A personal account's access token: an opaque string, not a JWT (docs/microsoft-notes.md "Personal accounts"),
 * which the sandbox's Graph resolves by looking up its SHA-256 hash here.
 */
export interface OpaqueAccessToken {
  oid: string;
  appId: string;
  scopes: string[];
  /** Seconds since the epoch, as a JWT's exp. */
  exp: number;
}

/** A refresh token, stored by SHA-256 hash only. */
export interface RefreshTokenRecord {
  grantId: string;
  issuedAt: number;
  rotatedAt?: number;
}

export interface StateData {
  version: 1;
  seed: number;
  seededAt: number;
  revokeOnReuse: boolean;
  /** Per user: tokens issued before this time are invalid (password change, revoke sessions). */
  tokensValidFrom: Record<string, number>;
  grants: Grant[];
  refreshTokens: Record<string, RefreshTokenRecord>;
  mailboxes: MailboxData[];
  /** Bumped to invalidate every delta token (410 SyncStateNotFound). */
  deltaGeneration?: number;
  /** App-only confinement: clientId -> mailboxes the app may access (ApplicationAccessPolicy). */
  appAccessPolicy?: Record<string, string[]>;
  /** Per user: the last day (UTC midnight, ms) the sample calendar has events for (see topUpCalendars). */
  calendarThrough?: Record<string, number>;
  /** Per app: Authentication settings an admin changed (src/sandbox/registration.ts). */
  registrations?: Record<string, RegistrationSettings>;
  /** Opaque access tokens of personal accounts, by SHA-256 hash. */
  opaqueAccessTokens?: Record<string, OpaqueAccessToken>;
}

/** The sample calendar reaches this many days ahead of today, topped up as days pass. */
const CALENDAR_AHEAD_DAYS = 14;

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** Seeds a user's mailbox. Alice gets the large generated inbox; Bob a small one. */
export function seedMailbox(upn: string, seed: number, now: number, inboxSize?: number): Mailbox {
  const box = Mailbox.create(upn, createHash('sha1').update(`${seed}:${upn}`).digest('hex').slice(0, 16));
  const nowIso = new Date(now).toISOString();
  const isAlice = upn.startsWith('alice@');
  const n = inboxSize ?? (isAlice ? 300 : 25);
  const generated = generateMailbox(n, seed + (isAlice ? 0 : 7), now);
  // Oldest first so seq order follows arrival order.
  generated.sort((a, b) => a.receivedDateTime.localeCompare(b.receivedDateTime));
  const inbox = box.folder('inbox')!;
  for (const g of generated) box.addMessage(g, inbox.id, nowIso);
  const others: [string, GeneratedMessage[]][] = [
    ['archive', generateMailbox(6, seed + 11, now - 90 * 86400_000)],
    ['sentitems', generateMailbox(5, seed + 13, now)],
    ['deleteditems', generateMailbox(3, seed + 17, now)],
    ['junkemail', generateMailbox(2, seed + 19, now)],
  ];
  for (const [name, list] of others) {
    const f = box.folder(name)!;
    for (const g of list) box.addMessage({ ...g, isRead: name !== 'junkemail' ? true : g.isRead }, f.id, nowIso);
  }
  for (const c of generateContacts(upn)) box.addContact(c, nowIso);
  return box;
}

/**
 * All mutable sandbox state, saved to `dataDir/state.json` atomically
 * (write tmp, rename) about 50 ms after the last change and on close.
 */
export class SandboxState {
  data: StateData;
  readonly mailboxes = new Map<string, Mailbox>();
  private timer: NodeJS.Timeout | undefined;
  /** Grows with the time a save takes, so a 50,000-message mailbox is not rewritten every 50 ms. */
  private debounceMs = 50;
  private readonly file: string | undefined;

  constructor(private readonly opts: { dataDir: string; persist: boolean; seed: number; now: () => number }) {
    this.file = opts.persist ? join(opts.dataDir, 'state.json') : undefined;
    const loaded = this.file && existsSync(this.file) ? this.tryLoad(this.file) : undefined;
    this.data = loaded ?? this.fresh();
    for (const mb of this.data.mailboxes) this.attach(new Mailbox(mb));
    // A state saved before a user was added to the directory (the personal account) gets that user's mailbox.
    for (const u of SANDBOX_USERS) if (!this.mailboxes.has(u.upn)) this.attach(seedMailbox(u.upn, this.data.seed, this.opts.now()));
    this.topUpCalendars();
    if (!loaded) this.save();
  }

  /**
   * Keeps each seeded user's sample calendar (src/sandbox/sample-calendar.ts) filled from the day before
   * the seed up to CALENDAR_AHEAD_DAYS from today, so an agenda on a sandbox left running for months still
   * has a day to show. Events a test or a person added are left alone; days already filled are not redone.
   */
  topUpCalendars(): void {
    const until = utcMidnight(this.opts.now()) + CALENDAR_AHEAD_DAYS * 86_400_000;
    const through = (this.data.calendarThrough ??= {});
    for (const user of SANDBOX_USERS) {
      const upn = user.upn.toLowerCase();
      const box = this.mailboxes.get(upn);
      const from = (through[upn] ?? utcMidnight(this.data.seededAt) - 2 * 86_400_000) + 86_400_000;
      if (!box || from > until) continue;
      const zone = ianaZone(user.timeZone) ?? 'UTC';
      const nowIso = new Date(this.opts.now()).toISOString();
      for (const day of daysBetween(from, until)) for (const event of sampleDay(zone, day)) box.addEvent(event, nowIso);
      through[upn] = until;
      this.changed();
    }
  }

  private tryLoad(file: string): StateData | undefined {
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as StateData;
      return parsed.version === 1 ? parsed : undefined;
    } catch {
      return undefined;
    }
  }

  private fresh(): StateData {
    const now = this.opts.now();
    return {
      version: 1, seed: this.opts.seed, seededAt: now, revokeOnReuse: false, tokensValidFrom: {},
      grants: [], refreshTokens: {},
      mailboxes: SANDBOX_USERS.map((u) => seedMailbox(u.upn, this.opts.seed, now).toJSON()),
    };
  }

  private attach(box: Mailbox): void {
    box.onChange = () => this.changed();
    this.mailboxes.set(box.upn, box);
  }

  /** Re-seed everything (mailboxes, grants, tokens). */
  reset(): void {
    this.data = this.fresh();
    this.mailboxes.clear();
    for (const mb of this.data.mailboxes) this.attach(new Mailbox(mb));
    this.topUpCalendars();
    this.changed();
  }

  /** Replace one mailbox with a freshly generated one of `inboxSize` messages. */
  regenerate(upn: string, inboxSize: number, seed = this.data.seed): Mailbox {
    const box = seedMailbox(upn, seed, this.opts.now(), inboxSize);
    this.attach(box);
    if (this.data.calendarThrough) delete this.data.calendarThrough[box.upn];
    this.topUpCalendars();
    this.changed();
    return box;
  }

  mailbox(upn: string): Mailbox | undefined {
    return this.mailboxes.get(upn.toLowerCase());
  }

  changed(): void {
    if (!this.file || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.save();
    }, this.debounceMs);
    this.timer.unref();
  }

  save(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.file) return;
    const started = Date.now();
    mkdirSync(this.opts.dataDir, { recursive: true });
    this.data.mailboxes = [...this.mailboxes.values()].map((m) => m.toJSON());
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.data), { mode: 0o600 });
    renameSync(tmp, this.file);
    this.debounceMs = Math.max(50, Math.min(10 * (Date.now() - started), 10_000));
  }
}
