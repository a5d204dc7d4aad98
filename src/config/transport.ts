import { Agent, fetch as undiciFetch } from 'undici';

export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * The HTTP client for Entra and Graph. Trust is Node's own (system store + NODE_EXTRA_CA_CERTS),
 * except for the origins of the built-in sandbox, which present a CA the sandbox generated:
 * that CA is trusted for those origins only, and certificate checks are never disabled.
 * Example: `const f = createFetch({ origins: ['https://127.0.0.1:3100'], caPem })`.
 */
export function createFetch(extraTrust?: { origins: string[]; caPem: string }): FetchLike {
  if (!extraTrust) return (input, init) => fetch(input, init);
  const dispatcher = new Agent({ connect: { ca: extraTrust.caPem } });
  const origins = new Set(extraTrust.origins.map((o) => new URL(o).origin));
  return (input, init) => {
    const url = new URL(String(input));
    if (!origins.has(url.origin)) return fetch(input, init);
    return undiciFetch(url, { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1]) as unknown as Promise<Response>;
  };
}
