/**
 * When and how long to wait before retrying a Graph request.
 * Graph throttling: 429 (and 503/504) with Retry-After in seconds, possibly fractional, or an HTTP date
 * [MICROSOFT.md "Batching, throttling, errors"; msal-node LinearRetryPolicy reads both forms].
 */
export interface RetryPolicy {
  /** Milliseconds to wait before attempt `attempt + 1`, or undefined to give up. */
  delayFor(input: { attempt: number; status?: number; retryAfter?: string | null; waitedMs: number; idempotent: boolean; networkError?: boolean }): number | undefined;
}

export const RETRYABLE_STATUS = new Set([429, 503, 504]);

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
    delayFor({ attempt, status, retryAfter, waitedMs, idempotent, networkError }) {
      if (attempt >= maxAttempts) return undefined;
      if (networkError ? !idempotent : !(status !== undefined && RETRYABLE_STATUS.has(status))) return undefined;
      const told = parseRetryAfter(retryAfter, options.now?.());
      const delay = told ?? Math.round(random() * Math.min(cap, base * 2 ** (attempt - 1)));
      if (waitedMs + delay > maxTotal) return undefined;
      return delay;
    },
  };
}
