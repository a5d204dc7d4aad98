import { AgentError } from '../config/errors.ts';
import type { Logger } from '../config/logger.ts';
import type { MailboxSettings } from '../graph/mailbox.ts';
import { jobTimeZone, toIana } from '../graph/timezone.ts';
import type { Store } from '../store/index.ts';

/** The zone the schedules run in, and why (the `timezone` of `status --json` and `GET /api/status`). */
export interface ScheduleTimeZone {
  /** IANA name, as node-cron and Intl take it. */
  name: string;
  source: 'jobs-file' | 'mailbox' | 'utc-fallback';
  /** When the mailbox's setting was read (source `mailbox`, or a fallback after a refusal). */
  checkedAt?: string;
  /** Why UTC (source `utc-fallback`), with what to do about it. */
  reason?: string;
}

/** What is cached in the store: the zone, and whose mailbox it was read from (so a new sign-in re-reads it). */
interface CachedZone extends ScheduleTimeZone {
  identity: string;
}

export interface ScheduleZoneDeps {
  /** The jobs file's `timezone:`, which wins over the mailbox's. */
  fileZone?: string;
  store: Store;
  /** `GET {mailbox}/mailboxSettings`. */
  readSettings: () => Promise<MailboxSettings>;
  /**
   * Who the mailbox is, changing with every sign-in (delegated: the account and when it signed in; app-only: the
   * confined mailbox), or undefined while nobody may be asked (signed out, confinement not proven).
   */
  identity: () => Promise<string | undefined>;
  log: Logger;
  now?: () => number;
  /** How long a read setting is trusted (default a day). */
  maxAgeMs?: number;
}

const KEY = 'schedule:timezone';
const DAY_MS = 86_400_000;
/** After a failed read (network, 5xx), the next attempt waits this long rather than going on every check. */
const RETRY_MS = 15 * 60_000;

const NOT_KNOWN_YET: ScheduleTimeZone = {
  name: 'UTC',
  source: 'utc-fallback',
  reason: 'The mailbox\'s time zone is not known yet: the running agent (start) reads it once someone is signed in. Until then UTC; set timezone: in the jobs file to choose.',
};

/**
 * The zone as last decided, from the jobs file or the store's cache, without asking Graph (what `status` shows).
 * Example: `const { name } = await readScheduleZone(jobs.timezone, store)`.
 */
export async function readScheduleZone(fileZone: string | undefined, store: Pick<Store, 'get'>): Promise<ScheduleTimeZone> {
  if (fileZone) return { name: toIana(fileZone), source: 'jobs-file' };
  const cached = await store.get<CachedZone>(KEY);
  return cached ? strip(cached) : NOT_KNOWN_YET;
}

/**
 * The zone schedules run in: the jobs file's `timezone:`, else the mailbox's own setting (mailboxSettings
 * `timeZone`, a Windows or IANA name: docs/microsoft-notes.md "Batching, calendar, time zones"; cached in the store
 * and re-read at most daily, or right after a new sign-in), else UTC (Graph refuses Outlook.com mailboxes their
 * settings: docs/microsoft-notes.md "Registration settings and personal accounts in the sandbox"); never the
 * host's zone, node-cron's default.
 * Example: `const scheduler = new Scheduler(runner, log, (await zone.load()).name); zone.onChange((z) => scheduler.setTimezone(z.name)); await zone.refresh()`.
 */
export class ScheduleZone {
  private applied?: ScheduleTimeZone;
  private failedAt?: { identity: string; at: number };
  private readonly listeners: ((zone: ScheduleTimeZone) => void)[] = [];
  private refreshing?: Promise<ScheduleTimeZone>;

  constructor(private readonly deps: ScheduleZoneDeps) {}

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** Called with the new zone whenever `refresh` finds that it changed. */
  onChange(listener: (zone: ScheduleTimeZone) => void): void {
    this.listeners.push(listener);
  }

  /** The zone last decided (jobs file, else the cache, else UTC), without asking Graph: what to start with. */
  async load(): Promise<ScheduleTimeZone> {
    this.applied = await readScheduleZone(this.deps.fileZone, this.deps.store);
    return this.applied;
  }

  /**
   * The zone as it is now: reads the cache, and the mailbox's setting when the cache is missing, older than
   * `maxAgeMs` or from another sign-in. A failed read keeps what was known. Concurrent calls share one read.
   */
  refresh(): Promise<ScheduleTimeZone> {
    return (this.refreshing ??= this.resolve().finally(() => (this.refreshing = undefined)));
  }

  private async resolve(): Promise<ScheduleTimeZone> {
    const zone = await this.lookUp();
    const before = this.applied;
    this.applied = zone;
    if (before && before.name !== zone.name) {
      this.deps.log.info({ from: before.name, to: zone.name, source: zone.source }, 'the schedules\' time zone changed; re-scheduling');
      for (const listener of this.listeners) listener(zone);
    }
    return zone;
  }

  private async lookUp(): Promise<ScheduleTimeZone> {
    if (this.deps.fileZone) return readScheduleZone(this.deps.fileZone, this.deps.store);
    const cached = await this.deps.store.get<CachedZone>(KEY);
    const identity = await this.deps.identity().catch(() => undefined);
    if (!identity) return cached ? strip(cached) : NOT_KNOWN_YET;
    const fresh = cached && cached.identity === identity && this.now() - Date.parse(cached.checkedAt ?? '') < (this.deps.maxAgeMs ?? DAY_MS);
    if (fresh) return strip(cached);
    if (this.failedAt?.identity === identity && this.now() - this.failedAt.at < RETRY_MS) return cached ? strip(cached) : NOT_KNOWN_YET;
    try {
      const zone = await this.read();
      await this.deps.store.set<CachedZone>(KEY, { ...zone, identity });
      this.failedAt = undefined;
      return zone;
    } catch (error) {
      this.failedAt = { identity, at: this.now() };
      this.deps.log.warn({ err: error }, 'could not read the mailbox\'s time zone; schedules keep the zone they have, and the agent tries again later');
      return cached ? strip(cached) : NOT_KNOWN_YET;
    }
  }

  private async read(): Promise<ScheduleTimeZone> {
    const checkedAt = new Date(this.now()).toISOString();
    const zone = await jobTimeZone(undefined, this.deps.readSettings, this.deps.log).catch((error: unknown) => {
      // A name that neither Intl nor CLDR knows (toIana's CONFIG_INVALID): UTC with the reason, not a stuck scheduler.
      if (!(error instanceof AgentError) || error.code !== 'CONFIG_INVALID') throw error;
      return { iana: 'UTC', source: 'default' as const, reason: `${error.message} Set timezone: in the jobs file (an IANA name such as Europe/Berlin).` };
    });
    if (zone.source === 'mailbox') return { name: zone.iana, source: 'mailbox', checkedAt };
    return { name: 'UTC', source: 'utc-fallback', checkedAt, reason: zone.reason ?? 'The mailbox names no time zone. Set timezone: in the jobs file to choose one.' };
  }
}

function strip({ identity: _identity, ...zone }: CachedZone): ScheduleTimeZone {
  return zone;
}
