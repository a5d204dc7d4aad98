/**
 * When a failed Graph request may be sent again, and how long to wait first.
 *
 * Two questions, kept apart: did Graph perhaps carry the request out (`mayHaveRun`), and may it be sent
 * again (`mayResend`)? A request whose repetition is harmless (GET, PATCH of the same fields, DELETE, a move
 * with immutable ids: "idempotent") is sent again after any transient failure: throttling, a 5xx, a dropped
 * connection, an answer cut off or not JSON. Any other (forward, sendMail, copy) is sent again only when the
 * answer proves Graph did not carry it out: 429, 503, or a connection that was never made (401 is handled
 * before: one forced token refresh). After a 500, 502, 504, a reset or a timeout once it was sent, nobody
 * can tell, so it is not repeated [docs/microsoft-notes.md "Ambiguous answers"].
 * Retry-After is seconds, possibly fractional, or an HTTP date [docs/microsoft-notes.md; msal-node
 * LinearRetryPolicy reads both forms].
 */
export type Failure =
  /** An HTTP error status. */
  | { kind: 'status'; status: number }
  /** No complete answer: `sent` false only when the connection was never made, so Graph never saw the request. */
  | { kind: 'network'; sent: boolean }
  /** A 2xx whose body is not the JSON it should be (malformed): Graph carried the request out. */
  | { kind: 'garbage' };

export interface RetryPolicy {
  /** Milliseconds to wait before attempt `attempt + 1`, or undefined to give up. */
  delayFor(input: { attempt: number; failure: Failure; retryAfter?: string | null; waitedMs: number; idempotent: boolean }): number | undefined;
}

/**
 * The longest Retry-After a run waits out. Beyond it (Graph asking for minutes), the mailbox's requests pause
 * until then and the run stops at a page boundary, to be continued by a later run (client.ts, GraphThrottled).
 */
export const LONGEST_RETRY_AFTER_MS = 60_000;

/** Statuses worth another try: throttling, and Graph failing or busy. */
export const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
/**
 * Statuses that prove the request was not carried out. 429: throttled before it ran. 503: "the server is
 * currently unable to handle the request" (RFC 9110 15.6.4), which Graph documents as "you may repeat the
 * request after a delay" (docs/microsoft-notes.md "Ambiguous answers"). 500, 502 and 504 prove nothing.
 */
export const NOT_CARRIED_OUT = new Set([429, 503]);

/** Whether Graph may have carried out a request that failed this way: false, true, or 'unknown'. */
export function mayHaveRun(failure: Failure): boolean | 'unknown' {
  if (failure.kind === 'garbage') return true;
  if (failure.kind === 'network') return failure.sent ? 'unknown' : false;
  if (failure.status >= 500 && !NOT_CARRIED_OUT.has(failure.status)) return 'unknown';
  return false;
}

/** Whether a request that failed this way may be sent again (see the file's comment). */
export function mayResend(failure: Failure, idempotent: boolean): boolean {
  if (failure.kind === 'status') return RETRYABLE_STATUS.has(failure.status) && (idempotent || NOT_CARRIED_OUT.has(failure.status));
  if (failure.kind === 'network') return idempotent || !failure.sent;
  return idempotent;
}

/** Error codes of a connection that was never made: the server cannot have seen the request. */
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** A fetch that threw: sent, unless its cause (fetch nests it) says the connection was never made. */
export function networkFailure(error: unknown): Failure {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && typeof e === 'object' && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && NEVER_CONNECTED.has(e.code)) return { kind: 'network', sent: false };
  }
  return { kind: 'network', sent: true };
}

/** Methods whose repetition is harmless; a POST is, only when its caller says so (a move with immutable ids). */
export function isIdempotent(method: string, flagged?: boolean): boolean {
  return flagged ?? ['GET', 'HEAD', 'PUT', 'DELETE', 'PATCH'].includes(method.toUpperCase());
}

export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Exponential backoff with full jitter when the server gives no Retry-After; bounded attempts and total wait.
 * Example: `exponentialRetry({ maxAttempts: 5, maxTotalWaitMs: 120_000 })`.
 */
export function exponentialRetry(options: { maxAttempts?: number; maxTotalWaitMs?: number; baseMs?: number; capMs?: number; random?: () => number; now?: () => number } = {}): RetryPolicy {
  const maxAttempts = options.maxAttempts ?? 6;
  const maxTotal = options.maxTotalWaitMs ?? 180_000;
  const base = options.baseMs ?? 1000;
  const cap = options.capMs ?? 60_000;
  const random = options.random ?? Math.random;
  return {
    delayFor({ attempt, failure, retryAfter, waitedMs, idempotent }) {
      if (attempt >= maxAttempts) return undefined;
      if (!mayResend(failure, idempotent)) return undefined;
      const told = parseRetryAfter(retryAfter, options.now?.());
      const delay = told ?? Math.round(random() * Math.min(cap, base * 2 ** (attempt - 1)));
      if (waitedMs + delay > maxTotal) return undefined;
      return delay;
    },
  };
}
