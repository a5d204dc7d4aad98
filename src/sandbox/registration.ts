import type { SandboxContext } from './context.ts';
import {
  findApp, matchRedirectUri, type AppRegistration, type RedirectPlatform, type RegisteredRedirectUri, type SandboxUser,
  type SignInAudience, type TenantSegment, isConsumer,
} from './directory.ts';

/**
 * An app registration's Authentication settings as an admin changes them in the portal, kept per app in the
 * persisted state (`registrations`) over the defaults of src/sandbox/directory.ts:
 * - "Allow public client flows" (device code needs it; without it a poll answers 401 AADSTS7000218);
 * - supported account types (`signInAudience`: one tenant answers AADSTS50194 at /common and /organizations);
 * - the platform of each redirect URI (a "Single-page application" code redeemed without `Origin`: AADSTS9002327).
 * Sources: docs/microsoft-notes.md "Registration traps".
 */
export interface RegistrationSettings {
  publicClientFlows?: boolean;
  audience?: SignInAudience;
  redirectUris?: RegisteredRedirectUri[];
}

export interface EffectiveRegistration {
  app: AppRegistration;
  publicClientFlows: boolean;
  audience: SignInAudience;
  redirectUris: RegisteredRedirectUri[];
}

const AUDIENCES: readonly SignInAudience[] = ['AzureADMyOrg', 'AzureADMultipleOrgs', 'AzureADandPersonalMicrosoftAccount'];
const PLATFORMS: readonly RedirectPlatform[] = ['web', 'spa', 'publicClient'];

function stored(ctx: SandboxContext): Record<string, RegistrationSettings> {
  return (ctx.state.data.registrations ??= {});
}

/** The settings in force for `app`: the admin's changes over the registration's defaults. */
export function registrationOf(ctx: SandboxContext, app: AppRegistration): EffectiveRegistration {
  const own = stored(ctx)[app.clientId] ?? {};
  return {
    app,
    publicClientFlows: own.publicClientFlows ?? app.publicClientFlows,
    audience: own.audience ?? app.audience,
    redirectUris: own.redirectUris ?? app.redirectUris,
  };
}

/**
 * Changes some settings of an app (the others keep their value); `null` puts every setting back to the
 * registration's defaults. Throws with the accepted values on bad input.
 * Example: `setRegistration(ctx, clientId, { audience: 'AzureADMyOrg', redirectUris: [{ uri, platform: 'spa' }] })`.
 */
export function setRegistration(ctx: SandboxContext, clientId: string, change: RegistrationSettings | null): EffectiveRegistration {
  const app = findApp(clientId);
  if (!app) throw new Error(`No sandbox app '${clientId}'.`);
  if (change === null) {
    delete stored(ctx)[app.clientId];
  } else {
    const checked: RegistrationSettings = {};
    if (change.publicClientFlows !== undefined) {
      if (typeof change.publicClientFlows !== 'boolean') throw new Error('publicClientFlows must be true or false');
      checked.publicClientFlows = change.publicClientFlows;
    }
    if (change.audience !== undefined) {
      if (!AUDIENCES.includes(change.audience)) throw new Error(`audience must be one of ${AUDIENCES.join(', ')}`);
      checked.audience = change.audience;
    }
    if (change.redirectUris !== undefined) {
      if (!Array.isArray(change.redirectUris)) throw new Error('redirectUris must be a list of {uri, platform}');
      checked.redirectUris = change.redirectUris.map((r) => {
        if (typeof r?.uri !== 'string' || !URL.canParse(r.uri)) throw new Error(`redirect URI ${JSON.stringify(r?.uri)} is not an absolute URL`);
        if (!PLATFORMS.includes(r.platform)) throw new Error(`platform of ${r.uri} must be one of ${PLATFORMS.join(', ')} (web, single-page application, mobile and desktop)`);
        return { uri: r.uri, platform: r.platform };
      });
    }
    stored(ctx)[app.clientId] = { ...stored(ctx)[app.clientId], ...checked };
  }
  ctx.state.changed();
  return registrationOf(ctx, app);
}

/** The registered redirect URI `redirectUri` matches (with its platform), or undefined (AADSTS50011). */
export function registeredRedirect(reg: EffectiveRegistration, redirectUri: string): RegisteredRedirectUri | undefined {
  return matchRedirectUri(reg.redirectUris, redirectUri);
}

/**
 * Whether the app may be used under this authority segment at all; else the error to answer. A single-tenant app
 * at /common or /organizations: AADSTS50194 (created after 10/15/2018, as every app now is). An app not registered
 * for personal accounts at /consumers: the Microsoft account service's `unauthorized_client` (it has no AADSTS code).
 */
export function audienceRefusal(reg: EffectiveRegistration, t: TenantSegment): { error: string; code?: number; text: string } | undefined {
  if (reg.audience === 'AzureADMyOrg' && (t.kind === 'common' || t.kind === 'organizations')) {
    return {
      error: 'invalid_request', code: 50194,
      text: `Application '${reg.app.clientId}'(${reg.app.displayName}) is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant.`,
    };
  }
  if (reg.audience !== 'AzureADandPersonalMicrosoftAccount' && t.kind === 'consumers') {
    return {
      error: 'unauthorized_client',
      text: 'The client does not exist or is not enabled for consumers. If you are the application developer, configure a new application through the App Registrations in the Azure Portal at https://go.microsoft.com/fwlink/?linkid=2083908.',
    };
  }
  return undefined;
}

/** Whether `user` may sign in to this app under this authority segment (the tenant's users, or personal accounts). */
export function userFits(reg: EffectiveRegistration, t: TenantSegment, user: SandboxUser): boolean {
  if (isConsumer(user)) return reg.audience === 'AzureADandPersonalMicrosoftAccount' && (t.kind === 'consumers' || t.kind === 'common');
  return t.kind === 'tenant' ? t.tid === user.tid : t.kind !== 'consumers';
}
