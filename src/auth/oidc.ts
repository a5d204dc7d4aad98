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
    const templated = typeof body?.issuer === 'string' && body.issuer.includes('{tenantid}');
    if (!templated || server.origin === ENTRA_PUBLIC_ORIGIN) throw error;
    const presented = new URL(`${ENTRA_PUBLIC_ORIGIN}/${options.tenant}/v2.0`);
    const wellKnown = `${presented.href}/.well-known/openid-configuration`;
    const actual = `${server.href}/.well-known/openid-configuration`;
    const routed: client.CustomFetch = (url, init) => customFetch(url === wellKnown ? actual : url, init);
    const config = await client.discovery(presented, options.clientId, metadata, clientAuth, { [client.customFetch]: routed });
    config[client.customFetch] = customFetch;
    return config;
  }
}
