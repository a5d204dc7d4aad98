/**
 * What a token-endpoint error means for the person running the agent.
 * Codes and meanings: docs/microsoft-notes.md "Token endpoint errors" (entra-docs reference-error-codes,
 * refresh-tokens) and msal-common InteractionRequiredAuthError.ts for the standard OAuth errors.
 */
export type FailureClass = 'needs-signin' | 'config' | 'transient';

export interface ClassifiedFailure {
  kind: FailureClass;
  /** AADSTS number when the body carried one. */
  aadsts?: number;
  /** The OAuth `error` field. */
  error?: string;
  /** Plain words: what happened. */
  reason: string;
  /** What to do (without the sign-in URL, which the caller appends). */
  remedy: string;
  /**
   * needs-signin only: the grant itself is alive and the condition may clear without anyone signing in
   * (Conditional Access, MFA or sign-in-frequency demands, missing consent), so the refresh token is kept and
   * retried at a low rate. msal-common likewise drops a refresh token only for suberror `bad_token`.
   */
  mayClear?: boolean;
}

interface CatalogueEntry {
  kind: FailureClass;
  reason: string;
  remedy: string;
  mayClear?: true;
}

/** How often a kept refresh token is tried again while a condition that may clear blocks it. */
export const MAY_CLEAR_RETRY_MS = 60 * 60_000;

const SIGN_IN = 'Sign in again';

const AADSTS: Record<number, CatalogueEntry> = {
  70008: { kind: 'needs-signin', reason: 'The sign-in has expired or was revoked', remedy: SIGN_IN },
  700082: { kind: 'needs-signin', reason: 'The refresh token expired after 90 days without use', remedy: `${SIGN_IN}; the agent refreshes at least every KEEPALIVE_DAYS while it runs so this does not recur` },
  700081: { kind: 'needs-signin', reason: 'The refresh token reached its maximum lifetime', remedy: SIGN_IN },
  700084: { kind: 'needs-signin', reason: 'The refresh token reached the 24-hour lifetime of single-page-app redirect URIs', remedy: `${SIGN_IN}, and register the redirect URI under "Mobile and desktop applications" or "Web", not "Single-page application"` },
  50173: { kind: 'needs-signin', reason: 'Your tokens were revoked, for example because your password was changed', remedy: SIGN_IN },
  65001: { kind: 'needs-signin', mayClear: true, reason: 'Consent to the app is missing or was withdrawn', remedy: `${SIGN_IN} and accept the permissions, or ask an admin to grant consent` },
  50076: { kind: 'needs-signin', mayClear: true, reason: 'Multi-factor authentication is required', remedy: `${SIGN_IN} in a browser and complete MFA` },
  50079: { kind: 'needs-signin', mayClear: true, reason: 'You must enrol in multi-factor authentication', remedy: `${SIGN_IN} in a browser and complete the MFA enrolment` },
  50078: { kind: 'needs-signin', mayClear: true, reason: 'Your multi-factor authentication has expired', remedy: `${SIGN_IN} in a browser and complete MFA` },
  70043: { kind: 'needs-signin', mayClear: true, reason: "Your organisation's sign-in frequency policy requires a new sign-in", remedy: SIGN_IN },
  53003: { kind: 'needs-signin', mayClear: true, reason: 'Conditional Access blocked the token', remedy: `Nothing, if the block is temporary (a location or device condition): the agent keeps the sign-in and tries again hourly. Otherwise ${SIGN_IN.toLowerCase()} from a device and location the policy allows, or ask your admin which policy applies` },
  90094: { kind: 'config', reason: 'An administrator must consent to the app', remedy: 'Ask a tenant admin to grant admin consent: https://login.microsoftonline.com/{tenant}/adminconsent?client_id={clientId}' },
  700016: { kind: 'config', reason: 'The app (MS_CLIENT_ID) was not found in the tenant', remedy: 'Check MS_CLIENT_ID and MS_TENANT in .env, and that the app registration is multi-tenant if you sign in from another tenant' },
  7000218: { kind: 'config', reason: 'The app registration does not allow public client flows, which device-code sign-in (and a client without a secret) needs', remedy: 'In the app registration, open Authentication → Advanced settings → "Allow public client flows" and set it to Yes, then save' },
  50194: { kind: 'config', reason: 'The app is registered for one organisation only (single-tenant), so it cannot sign in through the common endpoint', remedy: 'Set MS_TENANT in .env to your Directory (tenant) ID (the app registration\'s Overview shows it), or make the app multi-tenant' },
  9002327: { kind: 'config', reason: 'The redirect URI is registered under "Single-page application", whose tokens only a browser may redeem', remedy: 'In the app registration, open Authentication, remove the redirect URI from "Single-page application" and add it under "Mobile and desktop applications" (or "Web" with a client secret)' },
  7000215: { kind: 'config', reason: 'The client secret is wrong', remedy: 'Put the secret\'s Value (not its Secret ID) into MS_CLIENT_SECRET in .env' },
  7000222: { kind: 'config', reason: 'The client secret has expired', remedy: 'Create a new secret under Certificates & secrets in the app registration and put its Value into MS_CLIENT_SECRET' },
  700027: { kind: 'config', reason: 'The certificate is not registered on the app', remedy: 'Upload MS_CLIENT_CERT under Certificates & secrets of the app registration (mailbox-agent cert create prints its thumbprint)' },
  7000112: { kind: 'config', reason: 'The application is disabled', remedy: 'Ask a tenant admin to enable the enterprise application' },
  50011: { kind: 'config', reason: 'The redirect URI is not registered on the app', remedy: 'Add MS_REDIRECT_URI exactly as configured to the app registration\'s redirect URIs' },
};

/** Standard OAuth/OIDC errors (RFC 6749 §5.2, OIDC Core §3.1.2.6). */
const STANDARD: Record<string, CatalogueEntry> = {
  invalid_grant: { kind: 'needs-signin', reason: 'The identity provider no longer accepts the stored sign-in (invalid_grant)', remedy: SIGN_IN },
  interaction_required: { kind: 'needs-signin', mayClear: true, reason: 'The identity provider requires you to interact (interaction_required)', remedy: SIGN_IN },
  consent_required: { kind: 'needs-signin', mayClear: true, reason: 'Consent is required (consent_required)', remedy: `${SIGN_IN} and accept the permissions` },
  login_required: { kind: 'needs-signin', reason: 'The identity provider requires a new login (login_required)', remedy: SIGN_IN },
  invalid_client: { kind: 'config', reason: 'The identity provider rejected the client (invalid_client)', remedy: 'Check MS_CLIENT_ID in .env. With MS_CLIENT_SECRET or MS_CLIENT_CERT set, check that credential on the app registration; without one, the app registration needs "Allow public client flows: Yes" (Authentication → Advanced settings)' },
  unauthorized_client: { kind: 'config', reason: 'The app may not use this grant (unauthorized_client)', remedy: 'Enable public client flows (or the needed platform) in the app registration' },
  invalid_scope: { kind: 'config', reason: 'A requested permission is not valid (invalid_scope)', remedy: 'Check the API permissions of the app registration' },
  access_denied: { kind: 'needs-signin', reason: 'The sign-in was cancelled or denied (access_denied)', remedy: `${SIGN_IN} and accept the permissions` },
  temporarily_unavailable: { kind: 'transient', reason: 'The identity provider is temporarily unavailable', remedy: 'Nothing to do: the agent retries' },
  server_error: { kind: 'transient', reason: 'The identity provider had an internal error', remedy: 'Nothing to do: the agent retries' },
};

/** Extracts the AADSTS number from `error_codes` or the `error_description` text. */
export function aadstsCode(body: { error_codes?: unknown; error_description?: unknown }): number | undefined {
  if (Array.isArray(body.error_codes) && typeof body.error_codes[0] === 'number') return body.error_codes[0];
  const m = typeof body.error_description === 'string' ? /AADSTS(\d+)/.exec(body.error_description) : null;
  return m ? Number(m[1]) : undefined;
}

/**
 * Classifies an OAuth error body (or an HTTP status without one).
 * Example: `classifyTokenError({ error: 'invalid_grant', error_codes: [50173] })` → needs-signin, "…password was changed…".
 */
export function classifyTokenError(body: { error?: unknown; error_description?: unknown; error_codes?: unknown; suberror?: unknown } | undefined, httpStatus?: number): ClassifiedFailure {
  const error = typeof body?.error === 'string' ? body.error : undefined;
  // msal-common: suberror bad_token means the refresh token itself is unusable, whatever the code says.
  const badToken = body?.suberror === 'bad_token';
  const code = body ? aadstsCode(body) : undefined;
  if (httpStatus !== undefined && (httpStatus >= 500 || httpStatus === 429)) {
    return { kind: 'transient', aadsts: code, error, reason: `The identity provider answered HTTP ${httpStatus}.`, remedy: 'Nothing to do: the agent retries' };
  }
  const entry = (code !== undefined ? AADSTS[code] : undefined) ?? (error ? STANDARD[error] : undefined);
  if (entry) {
    const suffix = code !== undefined ? ` (AADSTS${code})` : '';
    return { kind: entry.kind, aadsts: code, error, reason: `${entry.reason}${suffix}.`, remedy: entry.remedy, ...(entry.mayClear && !badToken ? { mayClear: true } : {}) };
  }
  if (error === 'invalid_request' || error === 'unsupported_grant_type') {
    return { kind: 'config', aadsts: code, error, reason: `The identity provider rejected the request (${error}${code ? `, AADSTS${code}` : ''}).`, remedy: 'Check the MS_* settings in .env; run mailbox-agent doctor' };
  }
  // An unknown error from the token endpoint: do not throw the token away for it.
  return { kind: 'transient', aadsts: code, error, reason: `The identity provider refused the refresh (${error ?? `HTTP ${httpStatus ?? '?'}`}${code ? `, AADSTS${code}` : ''}).`, remedy: 'The agent retries; if it persists, run mailbox-agent doctor' };
}
