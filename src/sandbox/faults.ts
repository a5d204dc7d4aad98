import type { Request, Response } from 'express';

/**
 * Injectable Graph faults, for tests and the benchmark: the next N matching Graph requests (or `$batch`
 * sub-requests) fail the way Microsoft's do [docs/microsoft-notes.md "Ambiguous answers"; dev-proxy
 * GraphRandomErrorPlugin]. Faults are consumed in the order they were injected.
 *
 *   429        429 TooManyRequests with Retry-After (default '1'; fractional allowed), before acting
 *   503        503 ServiceUnavailable (Retry-After when given), before acting
 *   500        500 InternalServerError / generalException    } `phase: 'after'` (the default): the request
 *   502        502 BadGateway (Graph's gateway body)           } is carried out first, then the answer is lost
 *   504        504 GatewayTimeout (Graph's gateway body)       } to the error; 'before': nothing is done
 *   reset      the TCP connection is destroyed without an answer; `phase: 'before'` (the default) or
 *              'after' the request was carried out (top-level requests only)
 *   malformed  200 with a body that is not JSON (a cut-off JSON text, complete by length): before acting,
 *              or after it with `phase: 'after'` (top-level requests only)
 *   truncated  the request is carried out, the real answer's headers (Content-Length of the whole body)
 *              and half its body are sent, then the connection is destroyed (top-level requests only)
 *   latency    the request is delayed by latencyMs, then served normally
 *
 * `match` narrows which requests count: method (exact, any case) and pathContains (a substring of the
 * path and query, e.g. '/messages/delta' or '$batch' or '/move'). `after` lets that many matching
 * requests through first (so "fail the 3rd PATCH" is `{after: 2, times: 1}`).
 */
export type FaultKind = '429' | '503' | '500' | '502' | '504' | 'reset' | 'malformed' | 'truncated' | 'latency';

export interface FaultSpec {
  kind: FaultKind;
  times?: number;
  after?: number;
  match?: { method?: string; pathContains?: string };
  retryAfter?: string;
  latencyMs?: number;
  /** Whether the request is carried out before the fault hits (500/502/504, reset, malformed). */
  phase?: 'before' | 'after';
}

interface ActiveFault {
  spec: FaultSpec;
  remaining: number;
  skip: number;
}

export const FAULT_KINDS: readonly FaultKind[] = ['429', '503', '500', '502', '504', 'reset', 'malformed', 'truncated', 'latency'];
/** Faults of the connection itself: a `$batch` sub-request has none of its own. */
const CONNECTION_FAULTS = new Set<FaultKind>(['reset', 'malformed', 'truncated']);
const PHASED = new Set<FaultKind>(['500', '502', '504', 'reset', 'malformed']);

/** Where a fault strikes: `before` the request is carried out, or `after` (its effect stays, its answer is lost). */
export function faultPhase(spec: FaultSpec): 'before' | 'after' {
  if (spec.kind === 'truncated') return 'after';
  if (!PHASED.has(spec.kind)) return 'before';
  return spec.phase ?? (spec.kind === 'reset' || spec.kind === 'malformed' ? 'before' : 'after');
}

/** The error bodies of Graph's 5xx answers (code and message as Graph's front end sends them). */
const SERVER_ERRORS: Record<'500' | '502' | '503' | '504', { code: string; message: string }> = {
  500: { code: 'generalException', message: 'General exception while processing.' },
  502: { code: 'BadGateway', message: 'The server, while acting as a gateway or proxy, received an invalid response from the upstream server.' },
  503: { code: 'ServiceUnavailable', message: 'The service is temporarily unavailable.' },
  504: { code: 'GatewayTimeout', message: 'The server, while acting as a gateway or proxy, did not receive a timely response from the upstream server.' },
};

/** A 5xx fault as the status, code, message and headers of Graph's error answer; undefined for other kinds. */
export function serverError(spec: FaultSpec): { status: number; code: string; message: string; headers: Record<string, string> } | undefined {
  if (spec.kind !== '500' && spec.kind !== '502' && spec.kind !== '503' && spec.kind !== '504') return undefined;
  return { status: Number(spec.kind), ...SERVER_ERRORS[spec.kind], headers: spec.retryAfter ? { 'Retry-After': spec.retryAfter } : {} };
}

/** A delta page cut off mid-way: what a proxy that gave up half-way through a body leaves. */
const CUT_OFF_JSON = '{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#Collection(message)","value":[{"id":"AAMkAG';

/**
 * Answers a request with a connection fault (reset, malformed, truncated): `text` is the real answer's body
 * when the request was carried out. Returns false when `spec` is not a connection fault.
 */
export function sendConnectionFault(spec: FaultSpec, req: Request, res: Response, text?: string): boolean {
  if (spec.kind === 'reset') {
    req.socket.destroy();
    return true;
  }
  if (spec.kind === 'malformed') {
    res.status(200).type('application/json').send(CUT_OFF_JSON);
    return true;
  }
  if (spec.kind === 'truncated') {
    if (!text) {
      req.socket.destroy();
      return true;
    }
    const body = Buffer.from(text);
    res.status(res.statusCode || 200).type('application/json');
    res.setHeader('Content-Length', String(body.length));
    res.write(body.subarray(0, Math.floor(body.length / 2)), () => req.socket.destroy());
    return true;
  }
  return false;
}

export class FaultInjector {
  private readonly active: ActiveFault[] = [];
  /** How many faults have fired, by kind (tests assert the fault really happened). */
  readonly fired: Record<FaultKind, number> = FaultInjector.zero();

  private static zero(): Record<FaultKind, number> {
    return Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  }

  inject(spec: FaultSpec): void {
    if (!FAULT_KINDS.includes(spec.kind)) throw new Error(`unknown fault kind ${JSON.stringify(spec.kind)}; use one of ${FAULT_KINDS.join(', ')}`);
    const times = spec.times ?? 1;
    if (!Number.isInteger(times) || times < 1) throw new Error('times must be a whole number of at least 1');
    if (spec.kind === 'latency' && !(typeof spec.latencyMs === 'number' && spec.latencyMs >= 0)) throw new Error('a latency fault needs latencyMs (a number of milliseconds)');
    if (spec.retryAfter !== undefined && !/^\d+(\.\d+)?$/.test(spec.retryAfter) && Number.isNaN(Date.parse(spec.retryAfter))) {
      throw new Error('retryAfter must be seconds (e.g. "2" or "0.05") or an HTTP date');
    }
    if (spec.phase !== undefined && (!PHASED.has(spec.kind) || !['before', 'after'].includes(spec.phase))) {
      throw new Error(`phase ('before' or 'after') applies to ${[...PHASED].join(', ')} only`);
    }
    this.active.push({ spec, remaining: times, skip: spec.after ?? 0 });
  }

  clear(): void {
    this.active.length = 0;
    Object.assign(this.fired, FaultInjector.zero());
  }

  pending(): number {
    return this.active.reduce((n, f) => n + f.remaining, 0);
  }

  /** The fault this request gets, if any (consumed). `subRequest`: a `$batch` item, which has no connection faults. */
  take(method: string, pathAndQuery: string, subRequest: boolean): FaultSpec | undefined {
    for (let i = 0; i < this.active.length; i++) {
      const f = this.active[i]!;
      if (subRequest && CONNECTION_FAULTS.has(f.spec.kind)) continue;
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
