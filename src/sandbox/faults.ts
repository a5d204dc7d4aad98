/**
 * Injectable Graph faults, for tests and the benchmark: the next N matching Graph requests (or `$batch`
 * sub-requests) fail the way Microsoft's do [MICROSOFT.md "Batching, throttling, errors"; dev-proxy
 * GraphRandomErrorPlugin]. Faults are consumed in the order they were injected.
 *
 *   429        status 429 TooManyRequests with Retry-After (default '1'; fractional allowed)
 *   503        status 503 ServiceUnavailable (Retry-After when given)
 *   reset      the TCP connection is destroyed before any response (top-level requests only)
 *   malformed  200 with a truncated JSON body (top-level requests only)
 *   latency    the request is delayed by latencyMs, then served normally
 *
 * `match` narrows which requests count: method (exact, any case) and pathContains (a substring of the
 * path and query, e.g. '/messages/delta' or '$batch' or '/move'). `after` lets that many matching
 * requests through first (so "fail the 3rd PATCH" is `{after: 2, times: 1}`).
 */
export type FaultKind = '429' | '503' | 'reset' | 'malformed' | 'latency';

export interface FaultSpec {
  kind: FaultKind;
  times?: number;
  after?: number;
  match?: { method?: string; pathContains?: string };
  retryAfter?: string;
  latencyMs?: number;
}

interface ActiveFault {
  spec: FaultSpec;
  remaining: number;
  skip: number;
}

export const FAULT_KINDS: readonly FaultKind[] = ['429', '503', 'reset', 'malformed', 'latency'];

export class FaultInjector {
  private readonly active: ActiveFault[] = [];
  /** How many faults have fired, by kind (tests assert the fault really happened). */
  readonly fired: Record<FaultKind, number> = { '429': 0, '503': 0, reset: 0, malformed: 0, latency: 0 };

  inject(spec: FaultSpec): void {
    if (!FAULT_KINDS.includes(spec.kind)) throw new Error(`unknown fault kind ${JSON.stringify(spec.kind)}; use one of ${FAULT_KINDS.join(', ')}`);
    const times = spec.times ?? 1;
    if (!Number.isInteger(times) || times < 1) throw new Error('times must be a whole number of at least 1');
    if (spec.kind === 'latency' && !(typeof spec.latencyMs === 'number' && spec.latencyMs >= 0)) throw new Error('a latency fault needs latencyMs (a number of milliseconds)');
    if (spec.retryAfter !== undefined && !/^\d+(\.\d+)?$/.test(spec.retryAfter) && Number.isNaN(Date.parse(spec.retryAfter))) {
      throw new Error('retryAfter must be seconds (e.g. "2" or "0.05") or an HTTP date');
    }
    this.active.push({ spec, remaining: times, skip: spec.after ?? 0 });
  }

  clear(): void {
    this.active.length = 0;
    for (const k of FAULT_KINDS) this.fired[k] = 0;
  }

  pending(): number {
    return this.active.reduce((n, f) => n + f.remaining, 0);
  }

  /** The fault this request gets, if any (consumed). `subRequest`: a `$batch` item, which cannot be reset or malformed. */
  take(method: string, pathAndQuery: string, subRequest: boolean): FaultSpec | undefined {
    for (let i = 0; i < this.active.length; i++) {
      const f = this.active[i]!;
      if (subRequest && (f.spec.kind === 'reset' || f.spec.kind === 'malformed')) continue;
      const m = f.spec.match;
      if (m?.method && m.method.toUpperCase() !== method.toUpperCase()) continue;
      if (m?.pathContains && !decodeURIComponent(pathAndQuery).includes(m.pathContains)) continue;
      if (f.skip > 0) {
        f.skip--;
        continue;
      }
      f.remaining--;
      if (f.remaining <= 0) this.active.splice(i, 1);
      this.fired[f.spec.kind]++;
      return f.spec;
    }
    return undefined;
  }
}
