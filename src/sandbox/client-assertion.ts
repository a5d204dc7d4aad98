import { constants, createPublicKey, verify } from 'node:crypto';
import type { SandboxContext } from './context.ts';
import { certificatesOf } from './access-control.ts';
import { resolveTenant, type AppRegistration } from './directory.ts';
import { TokenEndpointError } from './entra-errors.ts';

/**
 * Verifies a `private_key_jwt` client assertion the way Entra does [entra-docs certificate-credentials;
 * MICROSOFT.md "Certificate credential"]: type jwt-bearer; header PS256 or RS256 with `x5t#S256` or `x5t` naming a
 * certificate registered on the app; signature by that certificate's key; `iss = sub = client_id`; `aud` = the
 * tenant's token endpoint (v2 or v1 path, tenant GUID or verified domain); `nbf`/`exp` around now (5 min skew);
 * `jti` never seen in another assertion. The same assertion presented again within its lifetime is accepted:
 * msal-node itself caches its assertion and re-sends it for up to 10 minutes (msal-node ClientAssertion.ts getJwt),
 * so Entra must accept that; a new assertion that reuses a `jti` is a replay and is refused.
 * Failures are `invalid_client` with the AADSTS codes and texts of real responses (700027 key not found or bad
 * signature, 700024 time range; 50027 malformed).
 */

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const SKEW_S = 300;

/** Seen jti values, per sandbox process, until their assertion expires: jti -> {signature, until}. */
const seen = new WeakMap<SandboxContext, Map<string, { signature: string; until: number }>>();

export function verifyClientAssertion(ctx: SandboxContext, app: AppRegistration, p: Record<string, string>, tenantId: string | undefined): void {
  const bad = (code: number, text: string) => new TokenEndpointError(401, 'invalid_client', code, text);
  if (p.client_assertion_type !== JWT_BEARER) {
    throw new TokenEndpointError(400, 'invalid_request', 90014, `The required field 'client_assertion_type' is missing or is not '${JWT_BEARER}'.`);
  }
  const parts = (p.client_assertion ?? '').split('.');
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  try {
    if (parts.length !== 3) throw new Error('parts');
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new TokenEndpointError(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.');
  }
  const x5tS256 = typeof header['x5t#S256'] === 'string' ? header['x5t#S256'] : undefined;
  const x5t = typeof header.x5t === 'string' ? header.x5t : undefined;
  const thumbprintShown = x5tS256 ? Buffer.from(x5tS256, 'base64url').toString('hex').toUpperCase() : x5t ? Buffer.from(x5t, 'base64url').toString('hex').toUpperCase() : '';
  const keyNotFound = () => bad(700027,
    `Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '${thumbprintShown}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${app.clientId}'. Review the documentation at https://learn.microsoft.com/en-us/graph/deployment-errors for more information.]`);
  const cert = certificatesOf(ctx, app.clientId).find((c) => (x5tS256 && c.x5tS256 === x5tS256) || (!x5tS256 && x5t && c.x5t === x5t));
  if (!cert) throw keyNotFound();

  const alg = header.alg;
  if (alg !== 'PS256' && alg !== 'RS256') throw bad(700027, `Client assertion failed signature validation. [Reason - The signing algorithm '${String(alg)}' is not supported.]`);
  const key = createPublicKey(cert.certPem);
  const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
  const signature = Buffer.from(parts[2]!, 'base64url');
  const ok = alg === 'PS256'
    ? verify('sha256', signed, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature)
    : verify('sha256', signed, key, signature);
  if (!ok) {
    throw bad(700027, `Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '${thumbprintShown}', Found key 'Start=${cert.notBefore}, End=${cert.notAfter}']`);
  }

  if (claims.iss !== app.clientId || claims.sub !== app.clientId) {
    throw bad(700021, `Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .`);
  }
  const expectedAud = `${ctx.origin}/${tenantId ?? '{tenant}'}/oauth2/v2.0/token`;
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.some((a) => typeof a === 'string' && audienceMatches(ctx.origin, a, tenantId))) {
    throw bad(700027, `Client assertion failed signature validation. [Reason - The audience '${String(claims.aud)}' is not the token endpoint '${expectedAud}'.]`);
  }
  const now = Math.floor(ctx.now() / 1000);
  const exp = typeof claims.exp === 'number' ? claims.exp : 0;
  const nbf = typeof claims.nbf === 'number' ? claims.nbf : 0;
  if (exp + SKEW_S < now || nbf - SKEW_S > now) {
    throw bad(700024, `Client assertion is not within its valid time range. Current time: ${new Date(now * 1000).toISOString()}, assertion valid from ${new Date(nbf * 1000).toISOString()}, expiry time of assertion ${new Date(exp * 1000).toISOString()}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .`);
  }
  const jti = typeof claims.jti === 'string' ? claims.jti : '';
  if (!jti) throw new TokenEndpointError(400, 'invalid_request', 50027, 'JWT token is invalid or malformed. [The jti claim is missing.]');
  let jtis = seen.get(ctx);
  if (!jtis) seen.set(ctx, (jtis = new Map()));
  for (const [k, v] of jtis) if (v.until < now) jtis.delete(k);
  const before = jtis.get(jti);
  if (before && before.signature !== parts[2]) {
    // Entra's exact code for a replayed jti is not documented; the sandbox answers invalid_client with the replay named.
    throw bad(700027, `Client assertion failed signature validation. [Reason - The jti '${jti}' was already used by another assertion.]`);
  }
  jtis.set(jti, { signature: parts[2]!, until: exp + SKEW_S });
}

/** `{origin}/{tenant}/oauth2/v2.0/token` (or the v1 `/oauth2/token`), the tenant by GUID or verified domain. */
function audienceMatches(origin: string, aud: string, tenantId: string | undefined): boolean {
  try {
    const a = new URL(aud);
    const m = /^\/([^/]+)\/oauth2\/(?:v2\.0\/)?token$/.exec(a.pathname);
    if (a.origin !== origin || !m || a.search) return false;
    const t = resolveTenant(decodeURIComponent(m[1]!));
    return tenantId !== undefined && t?.kind === 'tenant' && t.tid === tenantId;
  } catch {
    return false;
  }
}
