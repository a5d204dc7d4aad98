export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * The HTTP client for Entra and Graph. Trust is Node's own (system store + NODE_EXTRA_CA_CERTS),
 * except for the origins of the built-in sandbox, which present a CA the sandbox generated:
 * that CA is trusted for those origins only, and certificate checks are never disabled.
 * undici (its Agent carries that CA) is loaded with the first request to such an origin: ~100 ms of CPU that an
 * agent talking to Microsoft never needs (docs/BENCHMARKS.md).
 * Example: `const f = createFetch({ origins: ['https://127.0.0.1:3100'], caPem })`.
 */
export function createFetch(extraTrust?: { origins: string[]; caPem: string }): FetchLike {
  if (!extraTrust) return (input, init) => fetch(input, init);
  const origins = new Set(extraTrust.origins.map((o) => new URL(o).origin));
  let trusting: Promise<FetchLike> | undefined;
  return async (input, init) => {
    const url = new URL(String(input));
    if (!origins.has(url.origin)) return fetch(input, init);
    trusting ??= import('undici').then(({ Agent, fetch: undiciFetch }) => {
      const dispatcher = new Agent({ connect: { ca: extraTrust.caPem } });
      return (target, options) => undiciFetch(target, { ...(options as object), dispatcher } as Parameters<typeof undiciFetch>[1]) as unknown as Promise<Response>;
    });
    return (await trusting)(url, init);
  };
}
