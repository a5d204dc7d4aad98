/** The seeded tenant, its users and app registrations. Constants: same every run. */

export const SANDBOX_TENANT_ID = 'c0de5a4d-b0c5-4e1a-8f3e-2d7b9a6c4e10';
export const SANDBOX_TENANT_DOMAIN = 'contoso.test';
export const SANDBOX_CLIENT_ID = '5a4db0c5-a9e7-4b1c-8d2f-3e6a7b8c9d01';
/** A second, confidential app registration (client credentials / confidential code flow). */
export const SANDBOX_CONFIDENTIAL_CLIENT_ID = '5a4db0c5-a9e7-4b1c-8d2f-3e6a7b8c9d02';
export const SANDBOX_CLIENT_SECRET = 'sandbox~secret.value-0123456789abcdefABCDEF';
/** Personal Microsoft accounts' tenant [id-token-claims-reference]. */
export const MSA_TENANT_ID = '9188040d-6c67-4c5b-b112-36a304b66dad';
export const GRAPH_RESOURCE = 'https://graph.microsoft.com';
export const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';

export interface SandboxUser {
  upn: string;
  oid: string;
  displayName: string;
  givenName: string;
  surname: string;
  password: string;
  jobTitle: string;
  timeZone: string;
  /** The user's tenant: the sandbox tenant, or MSA_TENANT_ID for a personal Microsoft account. */
  tid: string;
}

export const SANDBOX_USERS: readonly SandboxUser[] = [
  {
    upn: 'alice@contoso.test', oid: 'a11ce000-7c3e-4f5a-9b2d-1e8f6a4c3b21', displayName: 'Alice Example',
    givenName: 'Alice', surname: 'Example', password: 'sandbox', jobTitle: 'Product Manager', timeZone: 'W. Europe Standard Time',
    tid: SANDBOX_TENANT_ID,
  },
  {
    upn: 'bob@contoso.test', oid: 'b0b00000-5e2d-4c1a-8f7b-9d3e6a2c4f18', displayName: 'Bob Jones',
    givenName: 'Bob', surname: 'Jones', password: 'sandbox', jobTitle: 'Engineer', timeZone: 'Pacific Standard Time',
    tid: SANDBOX_TENANT_ID,
  },
  {
    // A personal Microsoft account (Outlook.com): signs in under /consumers (or /common), gets opaque access
    // tokens, and Graph refuses her mailboxSettings (docs/microsoft-notes.md "Personal accounts").
    // MSA object ids look like 00000000-0000-0000-xxxx-xxxxxxxxxxxx (the account's puid).
    upn: 'carol@outlook.test', oid: '00000000-0000-0000-c4a0-1e5d7b2f9a63', displayName: 'Carol Personal',
    givenName: 'Carol', surname: 'Personal', password: 'sandbox', jobTitle: '', timeZone: 'GMT Standard Time',
    tid: MSA_TENANT_ID,
  },
];

/** Whether the user is a personal Microsoft account (no organisation, no app-only access, opaque tokens). */
export function isConsumer(user: SandboxUser): boolean {
  return user.tid === MSA_TENANT_ID;
}

/**
 * Who may sign in (the manifest's `signInAudience`): one organisation, any organisation, or any organisation
 * and personal Microsoft accounts [entra-docs supported-accounts-validation].
 */
export type SignInAudience = 'AzureADMyOrg' | 'AzureADMultipleOrgs' | 'AzureADandPersonalMicrosoftAccount';
/** The platform a redirect URI is registered under: "Web", "Single-page application", "Mobile and desktop applications". */
export type RedirectPlatform = 'web' | 'spa' | 'publicClient';

export interface RegisteredRedirectUri {
  uri: string;
  platform: RedirectPlatform;
}

export interface AppRegistration {
  clientId: string;
  displayName: string;
  /** Registered without any credential: presenting a secret or assertion answers AADSTS700025. */
  publicClient: boolean;
  secret?: string;
  /**
   * The registration's defaults; `admin.setAppRegistration` overrides them per app (src/sandbox/registration.ts,
   * which every check reads through).
   */
  audience: SignInAudience;
  /** Authentication → Advanced settings → "Allow public client flows" (`allowPublicClient`): device code needs it. */
  publicClientFlows: boolean;
  redirectUris: RegisteredRedirectUri[];
  /** Delegated Graph permissions consented for the tenant (what `.default` means). */
  delegated: string[];
  /** Application permissions (client credentials). */
  application: string[];
}

export const SANDBOX_APPS: readonly AppRegistration[] = [
  {
    // Multi-tenant and personal accounts, public client flows on, every redirect URI under "Mobile and desktop
    // applications": what the README tells a person to register.
    clientId: SANDBOX_CLIENT_ID, displayName: 'mailbox-agent (sandbox)', publicClient: true,
    audience: 'AzureADandPersonalMicrosoftAccount', publicClientFlows: true,
    redirectUris: ['http://localhost/auth/callback', 'http://127.0.0.1/auth/callback', 'https://login.microsoftonline.com/common/oauth2/nativeclient']
      .map((uri) => ({ uri, platform: 'publicClient' as const })),
    delegated: ['User.Read', 'Mail.ReadWrite', 'Mail.Send', 'MailboxSettings.Read', 'Calendars.Read', 'Calendars.ReadWrite', 'Contacts.Read', 'Files.ReadWrite'],
    application: [],
  },
  {
    clientId: SANDBOX_CONFIDENTIAL_CLIENT_ID, displayName: 'mailbox-agent (sandbox, confidential)', publicClient: false,
    secret: SANDBOX_CLIENT_SECRET, audience: 'AzureADMultipleOrgs', publicClientFlows: false,
    redirectUris: ['http://localhost/auth/callback', 'http://127.0.0.1/auth/callback'].map((uri) => ({ uri, platform: 'web' as const })),
    delegated: ['User.Read', 'Mail.ReadWrite', 'Mail.Send', 'MailboxSettings.Read', 'Calendars.Read', 'Calendars.ReadWrite', 'Contacts.Read', 'Files.ReadWrite'],
    application: ['Mail.ReadWrite', 'Mail.Send', 'MailboxSettings.Read', 'Calendars.Read', 'Calendars.ReadWrite', 'Contacts.Read', 'Files.ReadWrite', 'User.Read.All'],
  },
];

export function findUser(upnOrOid: string): SandboxUser | undefined {
  const key = upnOrOid.toLowerCase();
  return SANDBOX_USERS.find((u) => u.upn === key || u.oid === key);
}

export function findApp(clientId: string): AppRegistration | undefined {
  return SANDBOX_APPS.find((a) => a.clientId === clientId.toLowerCase());
}

/** Tenant ids the authority accepts in its path, and how each resolves. */
export type TenantSegment =
  | { kind: 'tenant'; tid: string }
  | { kind: 'common' | 'organizations' }
  | { kind: 'consumers'; tid: string };

export function resolveTenant(segment: string): TenantSegment | undefined {
  const s = segment.toLowerCase();
  if (s === SANDBOX_TENANT_ID || s === SANDBOX_TENANT_DOMAIN || s === 'contoso.onmicrosoft.com') return { kind: 'tenant', tid: SANDBOX_TENANT_ID };
  if (s === 'common') return { kind: 'common' };
  if (s === 'organizations') return { kind: 'organizations' };
  if (s === 'consumers' || s === MSA_TENANT_ID) return { kind: 'consumers', tid: MSA_TENANT_ID };
  return undefined;
}

/**
 * Redirect URI matching: the registered entry `redirectUri` matches, or undefined. Entra ignores the port of
 * `localhost` redirect URIs (and of 127.0.0.1) when matching, per RFC 8252 7.3
 * [entra-docs identity-platform/reply-url.md "Localhost exceptions"]; the rest (scheme, host, path, case) must
 * match exactly.
 */
export function matchRedirectUri(registered: readonly RegisteredRedirectUri[], redirectUri: string): RegisteredRedirectUri | undefined {
  let asked: URL;
  try {
    asked = new URL(redirectUri);
  } catch {
    return undefined;
  }
  return registered.find(({ uri }) => {
    if (uri === redirectUri) return true;
    const r = new URL(uri);
    const loopback = ['localhost', '127.0.0.1'].includes(r.hostname) && r.hostname === asked.hostname;
    return loopback && r.protocol === asked.protocol && r.pathname === asked.pathname && asked.search === '' && asked.hash === '';
  });
}
