/**
 * A Graph error answer: status, `error.code`, `error.message` and extra headers (Retry-After). The router
 * (src/sandbox/graph.ts) turns it into `{"error":{"code","message","innerError":{…}}}` once
 * (docs/microsoft-notes.md, "Batching, throttling, errors").
 */
export class GraphError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}
