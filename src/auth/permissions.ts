import { CALENDAR_ACTION_WRITES } from '../config/calendar-rules-schema.ts';
import type { JobsFile, JobSpec, Rule } from '../config/jobs-file.ts';
import { ACTION_NAMES, ACTIONS, actionName } from '../jobs/rules/actions/index.ts';
import { KEY_NAMES, MATCH_KEYS, type MatchSpec } from '../jobs/rules/keys/index.ts';
import type { PermissionUse } from '../jobs/rules/definition.ts';

/**
 * Least privilege: the Graph permissions the configured jobs need, and no more.
 * Reading mail needs Mail.Read; changing it (move, copy, flag, categorize, mark read, importance, delete,
 * creating folders) Mail.ReadWrite; forwarding or sending Mail.Send; calendarView Calendars.Read; answering or
 * changing events (accept, categories, showAs, reminder) Calendars.ReadWrite [event-accept, event-update]; the mailbox's
 * own time zone and working hours MailboxSettings.Read [graph permissions-reference; MICROSOFT.md "Graph mail"].
 * The names are the same for delegated scopes and application permissions; in RBAC for Applications the role is
 * "Application <name>" [exchange permissions-exo application-rbac].
 */
export type GraphPermission = 'Mail.Read' | 'Mail.ReadWrite' | 'Mail.Send' | 'Calendars.Read' | 'Calendars.ReadWrite' | 'MailboxSettings.Read' | 'Contacts.Read';
/**
 * Asked for in a delegated sign-in only: app-only refuses what needs it (OneDrive, Files.ReadWrite, is outside
 * Exchange's mailbox confinement), so it is never an application permission.
 */
export type DelegatedOnlyPermission = 'Files.ReadWrite';

export interface PermissionNeed {
  permission: GraphPermission | DelegatedOnlyPermission;
  /** Which jobs need it and why, in plain words. */
  because: string[];
}

export interface RequiredPermissions {
  /** Application permissions (app-only), least first; Mail.Read and Calendars.Read are dropped when their ReadWrite is needed. */
  application: GraphPermission[];
  /** Delegated scopes, with the sign-in scopes the agent always needs. */
  delegated: string[];
  needs: PermissionNeed[];
  /** Things that could not be analysed (custom jobs). */
  notes: string[];
}

const DELEGATED_ONLY: DelegatedOnlyPermission[] = ['Files.ReadWrite'];
const ORDER: GraphPermission[] = ['Mail.Read', 'Mail.ReadWrite', 'Mail.Send', 'Calendars.Read', 'Calendars.ReadWrite', 'MailboxSettings.Read', 'Contacts.Read'];

/**
 * Example: `requiredPermissions(jobsFile).application` → `['Mail.ReadWrite', 'MailboxSettings.Read']` for the sample triage job.
 */
export function requiredPermissions(jobs: Pick<JobsFile, 'jobs' | 'timezone'>): RequiredPermissions {
  const needs = new Map<GraphPermission | DelegatedOnlyPermission, string[]>();
  const notes: string[] = [];
  const need = (p: GraphPermission | DelegatedOnlyPermission, why: string) => needs.set(p, [...(needs.get(p) ?? []), why]);
  for (const job of jobs.jobs) addJob(job, need, notes, jobs);
  if (jobs.jobs.length && !jobs.timezone) need('MailboxSettings.Read', 'the jobs file sets no timezone, so schedules use the mailbox\'s own setting');
  if (needs.has('Mail.ReadWrite')) needs.delete('Mail.Read');
  if (needs.has('Calendars.ReadWrite')) needs.delete('Calendars.Read');
  const application = ORDER.filter((p) => needs.has(p));
  const delegatedOnly = DELEGATED_ONLY.filter((p) => needs.has(p));
  return {
    application,
    delegated: ['openid', 'profile', 'offline_access', 'User.Read', ...application, ...delegatedOnly],
    needs: [...application, ...delegatedOnly].map((permission) => ({ permission, because: needs.get(permission)! })),
    notes,
  };
}

function addJob(job: JobSpec, need: (p: GraphPermission | DelegatedOnlyPermission, why: string) => void, notes: string[], jobs: Pick<JobsFile, 'timezone'>): void {
  switch (job.type) {
    case 'inbox-rules': {
      need('Mail.Read', `${job.name} reads ${job.folder}`);
      for (const [use, names] of ruleUses(job.rules)) need(use.permission, `${job.name} ${use.why} (${names.join(', ')})`);
      return;
    }
    case 'agenda-digest': {
      need('Calendars.Read', `${job.name} reads the calendar`);
      need('MailboxSettings.Read', `${job.name} shows times in the mailbox's time zone`);
      const target = job.sendTo;
      if (target === 'me' || /^[^@\s/]+@[^@\s/]+$/.test(target)) need('Mail.Send', `${job.name} mails the digest to ${target}`);
      return;
    }
    case 'calendar-rules': {
      need('Calendars.Read', `${job.name} reads the calendar (calendarView delta)`);
      const actions = new Set(job.rules.flatMap((r) => r.actions.flatMap((a) => Object.keys(a) as (keyof typeof CALENDAR_ACTION_WRITES)[])));
      const writes = [...actions].filter((a) => CALENDAR_ACTION_WRITES[a]);
      if (writes.length) need('Calendars.ReadWrite', `${job.name} answers or changes events (${writes.join(', ')})`);
      const walk = (m: { outsideWorkingHours?: boolean; any?: unknown[] }): boolean => m.outsideWorkingHours !== undefined || (m.any ?? []).some((s) => walk(s as typeof m));
      if (job.rules.some((r) => walk(r.match)) && (!job.workingHours || !jobs.timezone)) need('MailboxSettings.Read', `${job.name} compares events with the mailbox's working hours or time zone (outsideWorkingHours)`);
      return;
    }
    case 'custom':
      need('Mail.ReadWrite', `${job.name} is a custom job (${job.module}); what it does cannot be analysed, so read-write is assumed`);
      notes.push(`${job.name}: a custom job may need more (Mail.Send if it sends); grant only what it uses.`);
      return;
  }
}

/**
 * The scopes a delegated sign-in asks for: `base` (the agent's standing set) plus, only when a job needs them
 * (least privilege), Calendars.ReadWrite (a calendar rule answers or changes events) and Contacts.Read (a rule
 * uses fromContacts).
 * Example: `signInScopes(jobsFile, DELEGATED_SCOPES)`.
 */
export function signInScopes(jobs: Pick<JobsFile, 'jobs' | 'timezone'>, base: readonly string[]): string[] {
  const needed = requiredPermissions(jobs).needs.map((n) => n.permission);
  return [...base, ...ON_DEMAND_SCOPES.filter((p) => needed.includes(p) && !base.includes(p))];
}

/** Scopes outside the standing set, asked for only when the jobs need them. */
const ON_DEMAND_SCOPES: (GraphPermission | DelegatedOnlyPermission)[] = ['Calendars.ReadWrite', 'Contacts.Read', 'Files.ReadWrite'];

/**
 * What an inbox-rules job's keys and actions need, from their definitions (src/jobs/rules/): each permission
 * and reason with the names that need it, in registry order, e.g. Mail.ReadWrite "changes mail" (moveTo, flag).
 */
function ruleUses(rules: Rule[]): Map<PermissionUse, string[]> {
  const actions = new Set(rules.flatMap((r) => r.actions.map(actionName)));
  const keys = new Set<string>();
  const walk = (m: MatchSpec): void => {
    for (const k of Object.keys(m)) keys.add(k);
    for (const sub of m.any ?? []) walk(sub);
  };
  for (const r of rules) walk(r.match);
  const uses = new Map<string, { use: PermissionUse; names: string[] }>();
  const add = (use: PermissionUse | undefined, name: string) => {
    if (!use) return;
    const id = `${use.permission}\0${use.why}`;
    const entry = uses.get(id) ?? { use, names: [] };
    entry.names.push(name);
    uses.set(id, entry);
  };
  for (const name of KEY_NAMES) if (keys.has(name)) add(MATCH_KEYS[name].permission, name);
  for (const name of ACTION_NAMES) {
    if (!actions.has(name)) continue;
    const def = ACTIONS[name] as { permission: PermissionUse | undefined; permissionFor?: (value: unknown) => PermissionUse | undefined };
    // An action whose need depends on its value (permissionFor) needs it only if one of its uses does.
    if (!def.permissionFor) add(def.permission, name);
    else for (const a of rules.flatMap((r) => r.actions)) if (actionName(a) === name) add(def.permissionFor((a as Record<string, unknown>)[name]), name);
  }
  return new Map([...uses.values()].map((e) => [e.use, e.names]));
}
