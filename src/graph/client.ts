import type { TokenProvider } from '../auth/types.ts';
import { AgentError } from '../config/errors.ts';
import type { Logger } from '../config/logger.ts';
import type { FetchLike } from '../config/transport.ts';
import { GraphError } from './graph-error.ts';
import { abortableSleep, GraphThrottled, type Pause, type RequestBudget } from './request-budget.ts';
import { exponentialRetry, isIdempotent, LONGEST_RETRY_AFTER_MS, mayHaveRun, networkFailure, parseRetryAfter, RETRYABLE_STATUS, type Failure, type RetryPolicy } from './retry-policy.ts';
import { Semaphore } from './semaphore.ts';

export interface GraphRequestOptions {
  body?: unknown;
  /** Bytes sent as they are with their content type (a OneDrive file's content), instead of a JSON `body`. */
  binary?: { bytes: Buffer; contentType: string };
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Repeating it is harmless (a move with immutable ids): retried after any transient failure even as a POST. */
  idempotent?: boolean;
}

/** One request of a `$batch`: a path under the Graph version (`/me/messages/{id}`), as for `request`. */
export interface BatchRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** As for `request`: a POST whose repetition is harmless (a move with immutable ids). */
  idempotent?: boolean;
}

/**
 * What became of one batched request. `executed: false`: Graph certainly did not run it (429, 503, 424, a
 * refused batch); 'unknown': it may have (500, 502, 504, or the batch's answer was lost).
 */
export interface BatchResult<T = unknown> {
  status: number;
  body?: T;
  headers: Record<string, string>;
  error?: GraphError;
  executed: boolean | 'unknown';
}

export interface BatchOptions {
  signal?: AbortSignal;
  /**
   * true: a successful sub-response is reported by its status alone: its body and headers are dropped as soon
   * as its batch is read (failures keep theirs). A PATCH or a move answers with the whole message; a caller
   * that needs only the status would otherwise hold every one of them until the last batch is done
   * (docs/BENCHMARKS.md, peak RSS).
   */
  statusOnly?: boolean;
}

const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** Requests per `$batch` [MICROSOFT.md "Batching, throttling, errors"]. */
export const BATCH_LIMIT = 20;

export interface GraphResponse<T> {
  status: number;
  body: T;
  headers: Headers;
}

export interface GraphPage<T> {
  value: T[];
  nextLink?: string;
  deltaLink?: string;
}

export interface GraphClientOptions {
  graphUrl: URL;
  tokens: TokenProvider;
  fetch: FetchLike;
  log: Logger;
  retry?: RetryPolicy;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Concurrent requests per mailbox; Outlook's MailboxConcurrency limit is 4. */
  concurrency?: number;
  /** App-only: the one mailbox (UPN) this client may touch; any other path, `/me` included, is refused before a request. */
  allowedMailbox?: string;
  /** A request with no complete answer after this long fails like a dropped connection (default 120 s). */
  timeoutMs?: number;
  /** The mailbox's request budget (GRAPH_BUDGET): every request, each `$batch` sub-request counting, waits for its share. */
  budget?: RequestBudget;
  /**
   * A 429 whose Retry-After is longer than this (default LONGEST_RETRY_AFTER_MS) is not waited out: the
   * mailbox's requests are paused until then and fail at once with GraphThrottled (the run is deferred).
   */
  longestRetryAfterMs?: number;
  /** The clock for pauses (ms); tests inject one. */
  now?: () => number;
}

/** How long a request may take, answer and body, before it fails like a dropped connection. */
const DEFAULT_TIMEOUT_MS = 120_000;

/**
 * Calls Graph v1.0 at one configured origin. The bearer token goes to that origin only: an absolute URL
 * (an @odata.nextLink, say) on any other origin is refused before a request is made.
 * Example: `const me = (await graph.get<{ id: string }>('/me')).body`.
 */
export class GraphClient {
  readonly base: string;
  readonly origin: string;
  /** Requests sent through this client (all attempts). */
  requests = 0;
  private readonly opts: GraphClientOptions;
  private readonly semaphore: Semaphore;
  private readonly retry: RetryPolicy;
  private readonly sleep: NonNullable<GraphClientOptions['sleep']>;
  private readonly parent?: GraphClient;
  /** Without a budget: this process's pause of the mailbox (a long Retry-After), kept by the root client. */
  private paused?: Pause;

  constructor(opts: GraphClientOptions, shared?: { parent: GraphClient }) {
    this.opts = opts;
    this.origin = opts.graphUrl.origin;
    this.base = `${opts.graphUrl.href.replace(/\/+$/, '')}/v1.0`;
    this.parent = shared?.parent;
    this.semaphore = shared?.parent.semaphore ?? new Semaphore(opts.concurrency ?? 4);
    this.retry = opts.retry ?? exponentialRetry();
    this.sleep = opts.sleep ?? abortableSleep;
  }

  /** A client sharing this one's concurrency limit, with its own request count (one per job run). */
  scoped(): GraphClient {
    return new GraphClient(this.opts, { parent: this });
  }

  get<T>(path: string, options?: GraphRequestOptions) {
    return this.request<T>('GET', path, options);
  }
  post<T>(path: string, body: unknown, options?: GraphRequestOptions) {
    return this.request<T>('POST', path, { ...options, body });
  }
  patch<T>(path: string, body: unknown, options?: GraphRequestOptions) {
    return this.request<T>('PATCH', path, { ...options, body });
  }
  delete(path: string, options?: GraphRequestOptions) {
    return this.request<void>('DELETE', path, options);
  }
  /** PUTs `bytes` as they are (a OneDrive simple upload); counted against the budget like any request. */
  putBytes<T>(path: string, bytes: Buffer, contentType: string, options?: GraphRequestOptions) {
    return this.request<T>('PUT', path, { ...options, body: undefined, binary: { bytes, contentType } });
  }

  /**
   * The plain transport, without the token: for pre-authenticated URLs Graph hands out on other hosts (a OneDrive
   * upload session's uploadUrl), which must not get the bearer token [docs/microsoft-notes.md, upload sessions].
   */
  get transport(): FetchLike {
    return this.opts.fetch;
  }

  /** Resolves a path (`/me/messages`) or an absolute Graph URL, refusing any other origin. */
  resolve(pathOrUrl: string): URL {
    if (/^[a-z][a-z0-9+.-]*:/i.test(pathOrUrl)) {
      const url = new URL(pathOrUrl);
      if (url.origin !== this.origin) {
        throw new AgentError('GRAPH_ORIGIN_REFUSED', `Refusing to send the access token to ${url.origin}: it is not the configured Graph origin ${this.origin}.`, {
          remedy: 'If Graph really lives there, set MS_GRAPH_URL; otherwise the response that named this URL is not to be trusted.',
        });
      }
      return this.guardMailbox(url);
    }
    return this.guardMailbox(new URL(this.base + (pathOrUrl.startsWith('/') ? pathOrUrl : `/${pathOrUrl}`)));
  }

  /** With `allowedMailbox`: only `/users/{that mailbox}/…` (and `$batch`, whose sub-requests are checked in `request`). */
  private guardMailbox(url: URL): URL {
    const allowed = this.opts.allowedMailbox?.toLowerCase();
    if (!allowed) return url;
    const rest = url.pathname.startsWith('/v1.0/') ? url.pathname.slice('/v1.0'.length) : url.pathname;
    if (rest === '/$batch') return url;
    const m = /^\/users(?:\/([^/]+)|\('([^']*)'\))(?:\/|$)/i.exec(rest);
    const who = m ? decodeURIComponent(m[1] ?? m[2] ?? '').toLowerCase() : undefined;
    if (who === allowed) return url;
    throw new AgentError('MAILBOX_REFUSED', `Refusing ${rest}: in app-only mode the agent may touch ${allowed} only (MAILBOX), never ${who ? `another mailbox (${who})` : rest.startsWith('/me') ? '/me' : 'anything outside /users/{MAILBOX}'}.`, {
      remedy: `Write job paths under /users/${allowed}/ (ctx.mailbox does this for you).`,
    });
  }

  async request<T>(method: string, pathOrUrl: string, options: GraphRequestOptions = {}): Promise<GraphResponse<T>> {
    const url = this.resolve(pathOrUrl);
    if (this.opts.allowedMailbox && url.pathname.endsWith('/$batch')) {
      const subs = (options.body as { requests?: { url?: unknown }[] } | undefined)?.requests;
      for (const sub of Array.isArray(subs) ? subs : []) this.resolve(typeof sub.url === 'string' && !/^[a-z]+:/i.test(sub.url) ? (sub.url.startsWith('/') ? sub.url : `/${sub.url}`) : String(sub.url));
    }
    const display = url.pathname.replace(/^\/v1\.0/, '');
    const idempotent = isIdempotent(method, options.idempotent);
    // Outlook counts each `$batch` sub-request against the mailbox's budget, not the batch [docs/microsoft-notes.md].
    const batched = url.pathname.endsWith('/$batch') ? (options.body as { requests?: unknown[] } | undefined)?.requests : undefined;
    const cost = Array.isArray(batched) ? batched.length : 1;
    let attempt = 0;
    let waited = 0;
    let refreshed = false;
    for (;;) {
      attempt++;
      options.signal?.throwIfAborted();
      const token = await this.opts.tokens.getAccessToken();
      let deadline: AbortSignal | undefined;
      let failure: Failure;
      let error: GraphError;
      let retryAfter: string | null = null;
      try {
        const response = await this.semaphore.run(async () => {
          // In the slot, right before sending: a slice of the budget is spent only while it is valid.
          await this.admit(cost, { method, path: display, signal: options.signal });
          this.count();
          // One deadline for the answer and its body, from the moment it is sent (not while it waits for a
          // slot): a request that hangs fails like a dropped connection.
          deadline = AbortSignal.timeout(this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
          return this.opts.fetch(url, {
            method,
            headers: {
              authorization: `Bearer ${token}`,
              accept: 'application/json',
              // Ids that survive moves [docs/microsoft-notes.md; outlook-immutable-id].
              prefer: ['IdType="ImmutableId"', ...(options.headers?.prefer ? [options.headers.prefer] : [])].join(', '),
              ...(options.binary ? { 'content-type': options.binary.contentType } : options.body !== undefined ? { 'content-type': 'application/json' } : {}),
              ...omit(options.headers, 'prefer'),
            },
            body: options.binary ? bytesOf(options.binary.bytes) : options.body === undefined ? undefined : JSON.stringify(options.body),
            signal: options.signal ? AbortSignal.any([options.signal, deadline]) : deadline,
            redirect: 'manual',
          });
        });
        if (response.status === 401 && !refreshed) {
          await response.body?.cancel();
          // One forced refresh, then one retry: Graph refused the token, so it ran nothing [issue: 401 InvalidAuthenticationToken].
          refreshed = true;
          await this.opts.tokens.getAccessToken({ forceRefresh: true });
          continue;
        }
        if (response.status >= 300 && response.status < 400) {
          await response.body?.cancel();
          throw new GraphError({ status: response.status, code: 'UnexpectedRedirect', message: `redirect to ${response.headers.get('location') ?? '(none)'} not followed`, method, path: display, executed: false });
        }
        if (response.status === 202 || response.status === 204) {
          await response.body?.cancel();
          return { status: response.status, body: undefined as T, headers: response.headers };
        }
        const body = readJson(await response.text());
        const requestId = response.headers.get('request-id') ?? undefined;
        if (response.status < 400) {
          if (body.ok) return { status: response.status, body: body.value as T, headers: response.headers };
          failure = { kind: 'garbage' };
          error = new GraphError({ status: response.status, code: 'InvalidResponse', message: `the response is not JSON (${body.error})`, requestId, method, path: display, executed: true });
        } else {
          failure = { kind: 'status', status: response.status };
          retryAfter = response.headers.get('retry-after');
          const err = (body.ok && typeof body.value === 'object' && body.value !== null ? (body.value as { error?: { code?: string; message?: string; innerError?: Record<string, string> } }).error : undefined) ?? {};
          error = new GraphError({
            status: response.status,
            code: err.code ?? `HTTP${response.status}`,
            message: err.message ?? (body.ok ? 'no error message' : 'the error body is not JSON'),
            requestId: requestId ?? err.innerError?.['request-id'],
            method,
            path: display,
            body: body.ok ? body.value : undefined,
            executed: mayHaveRun(failure),
          });
        }
      } catch (cause) {
        if (options.signal?.aborted || cause instanceof GraphError || cause instanceof AgentError) throw cause;
        // No (complete) answer: a reset, a timeout, a body cut off. Sent unless the connection was never made.
        failure = networkFailure(cause);
        const timedOut = deadline?.aborted === true;
        error = new GraphError({
          status: 0,
          code: timedOut ? 'Timeout' : 'NetworkError',
          message: timedOut ? `no complete answer within ${Math.round((this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000)} s` : describeNetworkError(cause),
          method,
          path: display,
          cause,
          executed: mayHaveRun(failure),
        });
      }
      const pause = this.pauseFor(failure, retryAfter, error);
      if (pause) throw await this.pauseMailbox(pause, { method, path: display });
      const delay = this.retry.delayFor({ attempt, failure, retryAfter, waitedMs: waited, idempotent });
      if (delay === undefined) throw error;
      this.opts.log.debug({ method, path: display, status: error.statusCode, code: error.remoteCode, delay }, 'graph request failed, retrying');
      await this.sleep(delay, options.signal);
      waited += delay;
    }
  }

  /**
   * Follows @odata.nextLink page by page; the last page carries the deltaLink of a delta query.
   * Example: `for await (const page of graph.pages('/me/mailFolders/inbox/messages?$top=100')) …`.
   */
  async *pages<T>(pathOrUrl: string, options: GraphRequestOptions = {}): AsyncGenerator<GraphPage<T>> {
    let next: string | undefined = pathOrUrl;
    while (next) {
      const response: GraphResponse<Record<string, unknown>> = await this.get<Record<string, unknown>>(next, options);
      const page: GraphPage<T> = toPage<T>(response.body, next);
      yield page;
      next = page.nextLink;
    }
  }

  /**
   * Sends requests as `$batch`es of up to 20, in order. Each batch is a `dependsOn` chain, so it holds one of
   * the mailbox's 4 slots at a time at Graph as it does here, and up to 4 batches run at once (the shared
   * semaphore). Only sub-requests that got 429/5xx (and those 424'd behind a failure) are sent again, after
   * the longest Retry-After among them, and a write that must not happen twice only when its answer proves
   * it did not run (retry-policy.ts); the rest keep their first answer. Results are in input order.
   * Example: `const [r] = await graph.batch([{ method: 'PATCH', url: '/me/messages/AAk…', body: { isRead: true } }])`.
   */
  async batch<T = unknown>(requests: BatchRequest[], options: BatchOptions = {}): Promise<BatchResult<T>[]> {
    const results: BatchResult<T>[] = new Array(requests.length);
    const chunks: number[][] = [];
    for (let i = 0; i < requests.length; i += BATCH_LIMIT) chunks.push(requests.slice(i, i + BATCH_LIMIT).map((_, k) => i + k));
    await Promise.all(chunks.map((indexes) => this.runChunk(requests, indexes, results, options.signal, options.statusOnly ?? false)));
    return results;
  }

  private async runChunk<T>(requests: BatchRequest[], indexes: number[], results: BatchResult<T>[], signal: AbortSignal | undefined, statusOnly: boolean): Promise<void> {
    let pending = indexes;
    const attempts = new Map<number, number>();
    let waited = 0;
    while (pending.length > 0) {
      signal?.throwIfAborted();
      const payload = {
        requests: pending.map((index, k) => {
          const r = requests[index]!;
          this.resolve(r.url); // refuses absolute URLs on another origin before anything is sent
          if (/^[a-z][a-z0-9+.-]*:/i.test(r.url)) throw new AgentError('GRAPH_ORIGIN_REFUSED', `A batched request must name a path, not ${r.url}.`, { remedy: 'Pass paths such as /me/messages/{id} to batch().' });
          return {
            id: String(index),
            method: r.method,
            url: r.url,
            headers: { prefer: 'IdType="ImmutableId"', ...(r.body !== undefined ? { 'content-type': 'application/json' } : {}), ...r.headers },
            ...(r.body !== undefined ? { body: r.body } : {}),
            ...(k > 0 ? { dependsOn: [String(pending[k - 1])] } : {}),
          };
        }),
      };
      // The whole batch is sent again only if every request in it may be.
      const idempotent = pending.every((i) => isIdempotent(requests[i]!.method, requests[i]!.idempotent));
      let answer: GraphResponse<{ responses?: { id: string; status: number; headers?: Record<string, string>; body?: unknown }[] }>;
      try {
        answer = await this.request('POST', '/$batch', { body: payload, signal, idempotent });
      } catch (error) {
        if (!(error instanceof GraphError)) throw error;
        // The whole batch was refused (Graph ran none of it), or it may have run but its answer is lost.
        const executed = error.executed === true ? 'unknown' : error.executed;
        for (const i of pending) results[i] = { status: error.statusCode, headers: {}, error, executed };
        return;
      }
      const byId = new Map((answer.body?.responses ?? []).map((r) => [r.id, r]));
      const again: number[] = [];
      let delay = 0;
      for (const index of pending) {
        const r = requests[index]!;
        const item = byId.get(String(index));
        const display = r.url.replace(/\?.*$/, '');
        if (!item) {
          results[index] = { status: 0, headers: {}, executed: 'unknown', error: new GraphError({ status: 200, code: 'InvalidResponse', message: `the $batch answer has no response for request ${index}`, method: r.method, path: display, executed: 'unknown' }) };
          continue;
        }
        const headers = lowerKeys(item.headers);
        const n = (attempts.get(index) ?? 0) + 1;
        attempts.set(index, n);
        // Each sub-request by the same rule as a request of its own; a 424 was not run (its dependency failed).
        const failure: Failure = { kind: 'status', status: item.status };
        const pause = this.pauseFor(failure, headers['retry-after'], `${item.status} ${(item.body as { error?: { code?: string } } | undefined)?.error?.code ?? ''}`.trim());
        if (pause) {
          results[index] = { status: item.status, headers, executed: false, error: await this.pauseMailbox(pause, { method: r.method, path: display }) };
          continue;
        }
        if (item.status === 424 || RETRYABLE_STATUS.has(item.status)) {
          const d = item.status === 424 ? 0 : this.retry.delayFor({ attempt: n, failure, retryAfter: headers['retry-after'], waitedMs: waited, idempotent: isIdempotent(r.method, r.idempotent) });
          if (d !== undefined && n < 12) {
            again.push(index);
            delay = Math.max(delay, d);
            continue;
          }
        }
        if (item.status >= 400) {
          const err = (item.body as { error?: { code?: string; message?: string } } | undefined)?.error ?? {};
          const executed = item.status === 424 ? false : mayHaveRun(failure);
          results[index] = {
            status: item.status, headers, body: item.body as T, executed,
            error: new GraphError({ status: item.status, code: err.code ?? `HTTP${item.status}`, message: err.message ?? 'no error message', requestId: headers['request-id'], method: r.method, path: display, body: item.body, executed }),
          };
          continue;
        }
        results[index] = statusOnly ? { status: item.status, headers: NO_HEADERS, executed: true } : { status: item.status, headers, body: item.body as T, executed: true };
      }
      // Keep input order so the dependsOn chain still orders what is left.
      pending = again.sort((a, b) => a - b);
      if (pending.length > 0 && delay > 0) {
        this.opts.log.debug({ retrying: pending.length, delay }, 'graph batch sub-requests throttled or failing, retrying');
        await this.sleep(delay, signal);
        waited += delay;
      }
    }
  }

  /** Waits for the budget's share of `cost` requests; refuses at once while the mailbox is paused. */
  private async admit(cost: number, what: { method: string; path: string; signal?: AbortSignal }): Promise<void> {
    const root = this.root;
    const paused = root.paused;
    if (paused && paused.until > this.clock()) throw new GraphThrottled(paused, what);
    await this.opts.budget?.take(cost, what);
  }

  /** A 429 asking for a longer wait than a run should sit through: the pause it calls for, else undefined. */
  private pauseFor(failure: Failure, retryAfter: string | null | undefined, error: GraphError | string): Pause | undefined {
    if (failure.kind !== 'status' || failure.status !== 429) return undefined;
    const now = this.clock();
    const waitMs = parseRetryAfter(retryAfter, now);
    if (waitMs === undefined || waitMs <= (this.opts.longestRetryAfterMs ?? LONGEST_RETRY_AFTER_MS)) return undefined;
    const what = typeof error === 'string' ? error : `${error.statusCode} ${error.remoteCode ?? ''}`.trim();
    return { until: now + waitMs, reason: `Graph answered ${what} with Retry-After ${retryAfter}` };
  }

  /** Pauses the mailbox's requests (every process sharing the store too, through the budget) and returns the error to report. */
  private async pauseMailbox(pause: Pause, what: { method: string; path: string }): Promise<GraphThrottled> {
    const root = this.root;
    // The first answer sets the pause; the batches in flight with it, refused a moment later, do not move it.
    if (root.paused && root.paused.until > this.clock()) return new GraphThrottled(root.paused, what);
    root.paused = pause;
    this.opts.log.warn({ until: new Date(pause.until).toISOString(), reason: pause.reason }, 'Graph asked for a long pause; the mailbox\'s requests stop until then');
    await this.opts.budget?.pause(pause.until, pause.reason).catch((error) => this.opts.log.warn({ err: error }, 'could not record the pause in the store'));
    return new GraphThrottled(pause, what);
  }

  private get root(): GraphClient {
    return this.parent ? this.parent.root : this;
  }

  private clock(): number {
    return (this.opts.now ?? Date.now)();
  }

  private count(): void {
    this.requests++;
    if (this.parent) this.parent.count();
  }
}

/** Validates the shape of a collection page: a Graph fake that answers garbage gets a clear error. */
export function toPage<T>(body: Record<string, unknown> | undefined, from: string): GraphPage<T> {
  if (!body || !Array.isArray(body.value)) {
    throw new GraphError({ status: 200, code: 'InvalidResponse', message: 'a collection page without a "value" array', method: 'GET', path: from.replace(/^https?:\/\/[^/]+/, '') });
  }
  const nextLink = body['@odata.nextLink'];
  const deltaLink = body['@odata.deltaLink'];
  return {
    value: body.value as T[],
    nextLink: typeof nextLink === 'string' ? nextLink : undefined,
    deltaLink: typeof deltaLink === 'string' ? deltaLink : undefined,
  };
}

function readJson(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  if (text === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}

/** fetch says "fetch failed"; the reason (ECONNRESET, "other side closed", "terminated") is in its cause. */
function describeNetworkError(error: unknown): string {
  const e = error as { message?: string; cause?: { message?: string; code?: string } };
  const reason = e.cause ? `${e.cause.code ? `${e.cause.code}: ` : ''}${e.cause.message ?? ''}` : '';
  return reason && reason !== e.message ? `${e.message ?? 'network error'} (${reason})` : e.message ?? String(error);
}

function lowerKeys(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k.toLowerCase()] = String(v);
  return out;
}

/** A view of the Buffer's bytes (no copy) as fetch's body type. */
export function bytesOf(b: Buffer): Uint8Array<ArrayBuffer> {
  return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength);
}

function omit(headers: Record<string, string> | undefined, key: string): Record<string, string> {
  if (!headers) return {};
  const { [key]: _omitted, ...rest } = headers;
  return rest;
}

