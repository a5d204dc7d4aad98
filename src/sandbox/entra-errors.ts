import { randomUUID } from 'node:crypto';

/**
 * Entra's token endpoint error body [entra-docs reference-error-codes]:
 * `{error, error_description: "AADSTSnnnn: text\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …",
 *   error_codes: [n], timestamp, trace_id, correlation_id, error_uri, suberror?, claims?}`.
 * Timestamps are "YYYY-MM-DD hh:mm:ssZ".
 */
export interface EntraErrorBody {
  error: string;
  error_description: string;
  error_codes: number[];
  timestamp: string;
  trace_id: string;
  correlation_id: string;
  error_uri: string;
  suberror?: string;
  claims?: string;
}

/** Message texts as Entra words them (from public error reports and the error-code reference). */
export const AADSTS = {
  50011: (uri: string, app: string) =>
    `The redirect URI '${uri}' specified in the request does not match the redirect URIs configured for the application '${app}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.`,
  50034: (upn: string) => `The user account ${upn} does not exist in the directory. To sign into this application, the account must be added to the directory.`,
  50058: () => 'A silent sign-in request was sent but no user is signed in.',
  50126: () => 'Error validating credentials due to invalid username or password.',
  50173: (issued: string, validFrom: string) =>
    `The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '${issued}' and the TokensValidFrom date (before which tokens are not valid) for this user is '${validFrom}'.`,
  54005: () => 'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
  65004: () => 'User declined to consent to access the app.',
  70000: (what: string) => `The provided value for the '${what}' parameter is not valid.`,
  70003: (grant: string) => `The app requested an unsupported grant type '${grant}'.`,
  70008: () => 'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
  70011: (scope: string) => `The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid: '${scope}'.`,
  70016: () => 'OAuth 2.0 device flow error. Authorization is pending. Continue polling.',
  70020: () => "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
  90002: (tenant: string) =>
    `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
  90014: (param: string) => `The required field '${param}' is missing from the credential. Ensure that you have all the necessary parameters for the login request.`,
  900144: (param: string) => `The request body must contain the following parameter: '${param}'.`,
  501481: () => 'The Code_Verifier does not match the code_challenge supplied in the authorization request.',
  501491: () => 'Invalid size of Code_Challenge parameter.',
  50149: () => 'Invalid Code_Challenge_method parameter.',
  700016: (app: string, tenant: string) =>
    `Application with identifier '${app}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
  700084: (issued: string) =>
    `The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page. The token was issued on ${issued}.`,
  700082: (issued: string) => `The refresh token has expired due to inactivity. The token was issued on ${issued} and was inactive for 90.00:00:00.`,
  7000215: (app: string) =>
    `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app}'.`,
  7000218: () => "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
  700025: () => 'Client is public so neither \'client_assertion\' nor \'client_secret\' should be presented.',
  9002327: () => "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.",
  9002313: () => 'Invalid request. Request is malformed or invalid.',
  1002016: () => 'You are using TLS version 1.0, 1.1 and/or 3DES cipher which are deprecated to improve the security posture of Azure AD.',
} as const;

/** Entra's timestamp format: "2024-01-31 12:34:56Z". */
export function entraTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

export function entraErrorBody(
  now: number,
  error: string,
  code: number | undefined,
  text: string,
  extra: { suberror?: string; claims?: string; correlationId?: string } = {},
): EntraErrorBody {
  const traceId = randomUUID();
  const correlationId = extra.correlationId ?? randomUUID();
  const timestamp = entraTimestamp(now);
  const prefix = code !== undefined ? `AADSTS${code}: ` : '';
  const body: EntraErrorBody = {
    error,
    error_description: `${prefix}${text}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: code !== undefined ? [code] : [],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${code ?? ''}`,
  };
  if (extra.suberror) body.suberror = extra.suberror;
  if (extra.claims) body.claims = extra.claims;
  return body;
}

/** A token-endpoint failure carried up to the one handler that writes it. */
export class TokenEndpointError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly code: number | undefined,
    readonly text: string,
    readonly extra: { suberror?: string; claims?: string; retryAfter?: string } = {},
  ) {
    super(`${error}${code ? ` AADSTS${code}` : ''}`);
  }
}
