import * as client from 'openid-client';
import type { FetchLike } from '../config/transport.ts';

const ENTRA_PUBLIC_ORIGIN = 'https://login.microsoftonline.com';

/**
 * OIDC discovery under `{authorityHost}/{tenant}/v2.0`.
 *
 * Entra's multi-tenant metadata (`/common`, `/organizations`) publishes the issuer template
 * `…/{tenantid}/v2.0`; openid-client resolves that template only when the discovery URL's origin is
 * exactly https://login.microsoftonline.com [openid-client src/index.ts handleEntraId]. For the same
 * Entra-shaped metadata served by another host (national clouds, the sandbox), we present the discovery
 * to openid-client under the public-cloud origin and fetch it from the configured host; every endpoint
 * in the metadata still points at the configured host, and the id_token's `iss` is still checked against
 * the template filled with its own `tid`. Anything else (a tenant GUID, another provider) is strict.
 */
export async function discoverIssuer(options: {
  authorityHost: URL;
  tenant: string;
  clientId: string;
  clientSecret?: string;
  fetch: FetchLike;
  /** Seconds the local clock is behind the provider's (openid-client checks id_token iat/nbf/exp with it). */
  clockSkew?: number;
}): Promise<client.Configuration> {
  const base = options.authorityHost.href.replace(/\/+$/, '');
  const server = new URL(`${base}/${options.tenant}/v2.0`);
  const clientAuth = options.clientSecret ? client.ClientSecretPost(options.clientSecret) : client.None();
  const metadata: Partial<client.ClientMetadata> | undefined = options.clientSecret || options.clockSkew
    ? { ...(options.clientSecret ? { client_secret: options.clientSecret } : {}), ...(options.clockSkew ? { [client.clockSkew]: options.clockSkew } : {}) }
    : undefined;
  const customFetch = options.fetch as unknown as client.CustomFetch;
  try {
    return await client.discovery(server, options.clientId, metadata, clientAuth, { [client.customFetch]: customFetch });
  } catch (error) {
    const body = (error as { cause?: { body?: { issuer?: unknown } } }).cause?.body;
    if (!isEntraIssuer(body?.issuer, server) || server.origin === ENTRA_PUBLIC_ORIGIN) throw error;
    const presented = new URL(`${ENTRA_PUBLIC_ORIGIN}/${options.tenant}/v2.0`);
    const wellKnown = `${presented.href}/.well-known/openid-configuration`;
    const actual = `${server.href}/.well-known/openid-configuration`;
    const routed: client.CustomFetch = (url, init) => customFetch(url === wellKnown ? actual : url, init);
    const config = await client.discovery(presented, options.clientId, metadata, clientAuth, { [client.customFetch]: routed });
    config[client.customFetch] = customFetch;
    return config;
  }
}

/**
 * Entra's metadata under a tenant alias names another issuer: the template `…/{tenantid}/v2.0` (`common`,
 * `organizations`), or the tenant's own GUID (`consumers` → `9188040d-…/v2.0`, a verified domain → its tenant id)
 * [docs/microsoft-notes.md "ID token", "Personal accounts"]; openid-client accepts both only from
 * login.microsoftonline.com.
 */
function isEntraIssuer(issuer: unknown, server: URL): boolean {
  if (typeof issuer !== 'string' || !URL.canParse(issuer)) return false;
  if (issuer.includes('{tenantid}')) return true;
  const url = new URL(issuer);
  return url.origin === server.origin && /^\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\/v2\.0\/?$/i.test(url.pathname);
}

/**
 * `client.buildAuthorizationUrl`, but a plain-HTTP authorization endpoint on a loopback address is accepted
 * (openid-client refuses any http endpoint). The endpoint is only where the person's browser is sent, never
 * fetched by the agent; a loopback address cannot be reached or observed from the network (the reasoning of
 * RFC 8252 8.3). The built-in sandbox serves its sign-in page that way so that no browser shows a certificate
 * warning (docs/microsoft-notes.md, "The sandbox's sign-in pages"). Every other endpoint stays HTTPS-only.
 * Example: `buildAuthorizationUrl(config, { redirect_uri, scope, state })`.
 */
export function buildAuthorizationUrl(config: client.Configuration, parameters: Record<string, string>): URL {
  const metadata = config.serverMetadata();
  const endpoint = metadata.authorization_endpoint && URL.canParse(metadata.authorization_endpoint) ? new URL(metadata.authorization_endpoint) : undefined;
  if (endpoint?.protocol !== 'http:' || !LOOPBACK_HOSTNAMES.has(endpoint.hostname)) return client.buildAuthorizationUrl(config, parameters);
  // A configuration of its own, used for nothing but this URL, so the HTTPS-only rule stays on for requests.
  const browserOnly = new client.Configuration(metadata, config.clientMetadata().client_id);
  client.allowInsecureRequests(browserOnly);
  return client.buildAuthorizationUrl(browserOnly, parameters);
}

const LOOPBACK_HOSTNAMES = new Set(['127.0.0.1', '[::1]', 'localhost']);
