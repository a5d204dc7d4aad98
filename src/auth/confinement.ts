import { AgentError } from '../config/errors.ts';
import type { Logger } from '../config/logger.ts';
import type { GraphClient } from '../graph/client.ts';
import { GraphError } from '../graph/graph-error.ts';
import type { Store } from '../store/index.ts';
import type { GraphPermission } from './permissions.ts';
import type { AuthStatus, TokenProvider } from './types.ts';

/**
 * App-only confinement, proven by behaviour: reading MAILBOX works and reading CANARY_MAILBOX (another real
 * mailbox of the tenant) is denied with 403. ApplicationAccessPolicy answers `ErrorAccessDenied` "Access to OData
 * is disabled…"; RBAC for Applications `ExtensionError` / "Access is denied"; both take from minutes to hours to
 * apply, and RBAC confines nothing while an unscoped Entra application permission remains
 * [MICROSOFT.md "Confining app-only access to one mailbox"]. Nothing but this proof is trusted.
 */

export type ConfinementState =
  /** Target readable, canary denied. */
  | 'confined'
  /** The canary is readable: the app can read other mailboxes. */
  | 'unconfined'
  /** MAILBOX itself is denied: the policy excludes it, has not propagated, or the permission is missing. */
  | 'target-denied'
  /** CANARY_MAILBOX does not exist as a mailbox: its denial would prove nothing. */
  | 'canary-invalid'
  /** The probe failed for another reason (network, 5xx, token). */
  | 'unknown';

export interface ProbeResult {
  path: string;
  status: number;
  code?: string;
  message?: string;
}

export interface ConfinementProof {
  state: ConfinementState;
  checkedAt: string;
  /** Which mechanism denied the canary, read from the 403 body. */
  mechanism?: 'application-access-policy' | 'rbac-for-applications' | 'unrecognised-403';
  mailbox: string;
  canary: string;
  target: ProbeResult;
  canaryProbe?: ProbeResult;
  reason: string;
  remedy?: string;
}

/** What a person is told through NOTIFY_URL (src/notify's Notifier satisfies it). */
export interface ConfinementNotify {
  raise(key: string, input: { event: string; reason: string; remedy: string }): Promise<void>;
  resolve(key: string, input?: { event?: string; reason?: string; remedy?: string }): Promise<void>;
}

export interface ConfinementGuardOptions {
  /** A Graph client WITHOUT the mailbox guard: the probe must be able to ask for the canary. Used for these two GETs only. */
  probeGraph: GraphClient;
  mailbox: string;
  canary: string;
  ttlMs: number;
  allowUnconfined: boolean;
  clientId: string;
  /** The permissions the jobs need: the probe reads mail when they include mail, else the calendar. */
  permissions: GraphPermission[];
  store: Store;
  log: Logger;
  notify?: ConfinementNotify;
  now?: () => number;
}

const PROOF_KEY = 'confinement:proof';
const NOTIFY_KEY = 'confinement';

/**
 * Example:
 *   const guard = new ConfinementGuard({ probeGraph, mailbox, canary, ttlMs: 3_600_000, allowUnconfined: false, … });
 *   await guard.preflight(log);   // throws UNCONFINED / CONFINEMENT_UNPROVEN unless proven within CONFINEMENT_TTL
 */
export class ConfinementGuard {
  private readonly opts: ConfinementGuardOptions;
  private readonly now: () => number;
  private memo?: ConfinementProof;
  private inflight?: Promise<ConfinementProof>;

  constructor(opts: ConfinementGuardOptions) {
    this.opts = { ...opts, mailbox: opts.mailbox.toLowerCase(), canary: opts.canary.toLowerCase() };
    this.now = opts.now ?? Date.now;
  }

  get clientId(): string {
    return this.opts.clientId;
  }

  get allowUnconfined(): boolean {
    return this.opts.allowUnconfined;
  }

  /** The last proof, fresh or not (status, doctor). */
  async lastProof(): Promise<ConfinementProof | undefined> {
    return this.memo ?? (await this.opts.store.get<ConfinementProof>(PROOF_KEY));
  }

  /** A proof no older than CONFINEMENT_TTL: a cached `confined` one, else a new probe. */
  async current(): Promise<ConfinementProof> {
    const cached = await this.lastProof();
    if (cached && cached.state === 'confined' && this.now() - Date.parse(cached.checkedAt) < this.opts.ttlMs) {
      this.memo = cached;
      return cached;
    }
    return this.prove();
  }

  /** Probes now (start, doctor, an expired proof). Concurrent callers share one probe. */
  prove(): Promise<ConfinementProof> {
    this.inflight ??= this.probe().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /**
   * Before a job runs: throws unless confinement is proven (or ALLOW_UNCONFINED=true, which warns on every run).
   * Example: `await guard.preflight(log.child({ job: 'triage' }))`.
   */
  async preflight(log: Logger = this.opts.log): Promise<ConfinementProof> {
    const proof = await this.current();
    if (proof.state === 'confined') return proof;
    if (proof.state === 'unconfined' && this.opts.allowUnconfined) {
      log.warn({ canary: proof.canary }, `UNCONFINED: this app can read ${proof.canary} and so, most likely, every mailbox of the tenant; running anyway because ALLOW_UNCONFINED=true. Confine it: mailbox-agent policy`);
      return proof;
    }
    throw errorOf(proof);
  }

  /** For a Graph client's token provider: no token for the mailbox until confinement is proven (no warning here). */
  async assertMayCallGraph(): Promise<void> {
    const proof = this.memo && this.memo.state === 'confined' && this.now() - Date.parse(this.memo.checkedAt) < this.opts.ttlMs ? this.memo : await this.current();
    if (proof.state === 'confined' || (proof.state === 'unconfined' && this.opts.allowUnconfined)) return;
    throw errorOf(proof);
  }

  /** The PowerShell that confines the app to MAILBOX (what `mailbox-agent policy` prints). */
  script(group?: string): string {
    return confinementScript({ appId: this.opts.clientId, mailbox: this.opts.mailbox, group, permissions: this.opts.permissions });
  }

  private async probe(): Promise<ConfinementProof> {
    const { mailbox, canary } = this.opts;
    const at = new Date(this.now()).toISOString();
    const base = { checkedAt: at, mailbox, canary };
    let proof: ConfinementProof;
    if (mailbox === canary) {
      proof = { ...base, state: 'canary-invalid', target: { path: '', status: 0 }, reason: 'CANARY_MAILBOX is MAILBOX itself, which proves nothing.', remedy: 'Set CANARY_MAILBOX to another real mailbox of the tenant, one the agent must not read.' };
    } else {
      const target = await this.read(mailbox);
      if (target.status === 200) {
        const probe = await this.read(canary);
        proof = this.judge(base, target, probe);
      } else if (target.status === 403) {
        proof = {
          ...base, state: 'target-denied', target,
          reason: `Reading MAILBOX ${mailbox} is denied (403 ${target.code ?? ''}): the access policy or RBAC scope excludes the agent's own mailbox, has not propagated yet (it can take hours), or the app lacks the permission.`,
          remedy: `Check with Test-ApplicationAccessPolicy -Identity ${mailbox} -AppId ${this.opts.clientId} (or Test-ServicePrincipalAuthorization -Identity ${this.opts.clientId} -Resource ${mailbox}); if it says granted, wait for propagation and run mailbox-agent doctor again. mailbox-agent policy prints the commands.`,
        };
      } else if (target.status === 404) {
        proof = { ...base, state: 'target-denied', target, reason: `MAILBOX ${mailbox} is not a mailbox Graph knows (${target.status} ${target.code ?? ''}).`, remedy: 'Check MAILBOX: the UPN of a licensed Exchange Online mailbox.' };
      } else {
        proof = { ...base, state: 'unknown', target, reason: `The confinement probe could not read ${mailbox}: ${target.status || 'network'} ${target.code ?? ''} ${target.message ?? ''}`.trim(), remedy: 'The agent proves again before the next run; mailbox-agent doctor shows the details.' };
      }
    }
    return this.record(proof);
  }

  private judge(base: Pick<ConfinementProof, 'checkedAt' | 'mailbox' | 'canary'>, target: ProbeResult, probe: ProbeResult): ConfinementProof {
    const { canary, clientId } = { canary: base.canary, clientId: this.opts.clientId };
    if (probe.status === 200) {
      return {
        ...base, state: 'unconfined', target, canaryProbe: probe,
        reason: `The app can read CANARY_MAILBOX ${canary}: it is not confined to ${base.mailbox} and can most likely read every mailbox of the tenant. No job runs.`,
        remedy: `A tenant admin confines it with the PowerShell of mailbox-agent policy (ApplicationAccessPolicy, or RBAC for Applications with the unscoped Entra permission removed), then waits for it to apply and runs mailbox-agent doctor. Only ALLOW_UNCONFINED=true runs unconfined.`,
      };
    }
    if (probe.status === 403) {
      const text = `${probe.code ?? ''} ${probe.message ?? ''}`;
      const mechanism = /Access to OData is disabled|ApplicationAccessPolicy|RAOP/i.test(text) ? 'application-access-policy'
        : /ExtensionError|Access is denied/i.test(text) ? 'rbac-for-applications' : 'unrecognised-403';
      return { ...base, state: 'confined', mechanism, target, canaryProbe: probe, reason: `Reading ${base.mailbox} works and reading ${canary} is denied (403 ${probe.code ?? ''}).` };
    }
    if (probe.status === 404) {
      return {
        ...base, state: 'canary-invalid', target, canaryProbe: probe,
        reason: `CANARY_MAILBOX ${canary} is not a mailbox Graph knows (404 ${probe.code ?? ''}), so its denial would prove nothing.`,
        remedy: `Set CANARY_MAILBOX to another real mailbox of the tenant (app ${clientId} must not be able to read it).`,
      };
    }
    return { ...base, state: 'unknown', target, canaryProbe: probe, reason: `The confinement probe of ${canary} failed: ${probe.status || 'network'} ${probe.code ?? ''} ${probe.message ?? ''}`.trim(), remedy: 'The agent proves again before the next run.' };
  }

  private async read(upn: string): Promise<ProbeResult> {
    const path = this.opts.permissions.some((p) => p.startsWith('Mail.')) || !this.opts.permissions.some((p) => p.startsWith('Calendars.'))
      ? `/users/${encodeURIComponent(upn)}/mailFolders/inbox?$select=id`
      : `/users/${encodeURIComponent(upn)}/calendar?$select=id`;
    try {
      const response = await this.opts.probeGraph.get(path);
      return { path, status: response.status };
    } catch (error) {
      if (error instanceof GraphError) return { path, status: error.statusCode, code: error.remoteCode, message: error.message };
      if (error instanceof AgentError) throw error;
      return { path, status: 0, message: (error as Error).message };
    }
  }

  private async record(proof: ConfinementProof): Promise<ConfinementProof> {
    const before = await this.lastProof();
    this.memo = proof;
    await this.opts.store.set(PROOF_KEY, proof);
    const changed = before?.state !== proof.state;
    const log = this.opts.log;
    if (proof.state === 'confined') {
      if (changed) log.info({ mechanism: proof.mechanism, canary: proof.canary }, `confinement proven: ${proof.reason}`);
      await this.opts.notify?.resolve(NOTIFY_KEY, { event: 'confinement-proven', reason: proof.reason });
    } else if (proof.state === 'unknown') {
      log.warn({ reason: proof.reason }, 'confinement probe failed');
    } else {
      if (changed) log.error({ state: proof.state }, `${proof.reason} ${proof.remedy ?? ''}`);
      await this.notifyRaise(proof);
    }
    return proof;
  }

  private async notifyRaise(proof: ConfinementProof): Promise<void> {
    const event = proof.state === 'unconfined' ? 'confinement-broken' : 'confinement-unproven';
    const remedy = `${proof.remedy ?? ''}${proof.state === 'unconfined' ? `\n\n${this.script()}` : ''}`;
    try {
      await this.opts.notify?.raise(NOTIFY_KEY, { event, reason: proof.reason, remedy });
    } catch (error) {
      this.opts.log.warn({ err: error }, 'could not notify about confinement');
    }
  }
}

function errorOf(proof: ConfinementProof): AgentError {
  return new AgentError(proof.state === 'unconfined' ? 'UNCONFINED' : 'CONFINEMENT_UNPROVEN', proof.reason, { remedy: proof.remedy, status: 503 });
}

/**
 * A TokenProvider that hands out no token until confinement is proven: every Graph call a job makes goes through it,
 * so nothing reaches the mailbox unproven, however the job was started.
 */
export function confinedTokens(tokens: TokenProvider, guard: ConfinementGuard): TokenProvider {
  return {
    mode: tokens.mode,
    async getAccessToken(options) {
      await guard.assertMayCallGraph();
      return tokens.getAccessToken(options);
    },
    status: (): Promise<AuthStatus> => tokens.status(),
  };
}

const RBAC_ROLE: Record<GraphPermission, string> = {
  'Mail.Read': 'Application Mail.Read',
  'Mail.ReadWrite': 'Application Mail.ReadWrite',
  'Mail.Send': 'Application Mail.Send',
  'Calendars.Read': 'Application Calendars.Read',
  'Calendars.ReadWrite': 'Application Calendars.ReadWrite',
  'MailboxSettings.Read': 'Application MailboxSettings.Read',
  'Contacts.Read': 'Application Contacts.Read',
};

/**
 * The Exchange Online PowerShell that confines the app to one mailbox: RBAC for Applications (recommended by
 * Microsoft) or the legacy ApplicationAccessPolicy [MICROSOFT.md "Confining app-only access to one mailbox";
 * exchange permissions-exo application-rbac; graph auth-limit-mailbox-access].
 * Example: `confinementScript({ appId, mailbox: 'agent@contoso.com', permissions: ['Mail.ReadWrite'] })`.
 */
export function confinementScript(o: { appId: string; mailbox: string; group?: string; permissions: GraphPermission[] }): string {
  const perms = o.permissions.length ? o.permissions : (['Mail.ReadWrite'] as GraphPermission[]);
  const scopeName = `mailbox-agent ${o.mailbox}`;
  const filter = o.group
    ? `MemberOfGroup -eq '<distinguished name of ${o.group}>'`
    : `PrimarySmtpAddress -eq '${o.mailbox}'`;
  const group = o.group ?? 'mailbox-agent-confined@<your domain>';
  return [
    '# Run in Exchange Online PowerShell as an Exchange admin: Connect-ExchangeOnline',
    '#',
    '# Option A (recommended): RBAC for Applications',
    '# The service principal object id is the enterprise application\'s Object ID (Entra admin center > Enterprise applications),',
    '# not the app registration\'s.',
    `New-ServicePrincipal -AppId ${o.appId} -ObjectId <enterprise application object id> -DisplayName "mailbox-agent"`,
    `New-ManagementScope -Name "${scopeName}" -RecipientRestrictionFilter "${filter}"`,
    ...perms.map((p) => `New-ManagementRoleAssignment -App ${o.appId} -Role "${RBAC_ROLE[p]}" -CustomResourceScope "${scopeName}"`),
    `Test-ServicePrincipalAuthorization -Identity ${o.appId} -Resource ${o.mailbox}`,
    '# IMPORTANT: RBAC grants in addition to the Entra application permissions. Remove the unscoped',
    `# application permissions (${perms.join(', ')}) from the app registration's API permissions, or the scope confines nothing.`,
    '#',
    '# Option B (legacy): ApplicationAccessPolicy; keep the Entra application permissions (admin consent granted).',
    `# ${group} must be a mail-enabled security group whose only member is ${o.mailbox}.`,
    `New-ApplicationAccessPolicy -AppId ${o.appId} -PolicyScopeGroupId ${group} -AccessRight RestrictAccess -Description "mailbox-agent: only ${o.mailbox}"`,
    `Test-ApplicationAccessPolicy -Identity ${o.mailbox} -AppId ${o.appId}`,
    '#',
    '# Either takes from minutes to a few hours to apply. Then: mailbox-agent doctor (it proves the confinement:',
    '# MAILBOX readable, CANARY_MAILBOX denied).',
  ].join('\n');
}
