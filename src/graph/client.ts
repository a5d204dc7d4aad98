import type { TokenProvider } from '../auth/types.ts';
import { AgentError } from '../config/errors.ts';
import type { Logger } from '../config/logger.ts';
import type { FetchLike } from '../config/transport.ts';
import { GraphError } from './graph-error.ts';
import { exponentialRetry, type RetryPolicy } from './retry-policy.ts';
import { Semaphore } from './semaphore.ts';

export interface GraphRequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

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
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'PATCH']);

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

  constructor(opts: GraphClientOptions, shared?: { parent: GraphClient }) {
    this.opts = opts;
    this.origin = opts.graphUrl.origin;
    this.base = `${opts.graphUrl.href.replace(/\/+$/, '')}/v1.0`;
    this.parent = shared?.parent;
    this.semaphore = shared?.parent.semaphore ?? new Semaphore(opts.concurrency ?? 4);
    this.retry = opts.retry ?? exponentialRetry();
    this.sleep = opts.sleep ?? defaultSleep;
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

  /** Resolves a path (`/me/messages`) or an absolute Graph URL, refusing any other origin. */
  resolve(pathOrUrl: string): URL {
    if (/^[a-z][a-z0-9+.-]*:/i.test(pathOrUrl)) {
      const url = new URL(pathOrUrl);
      if (url.origin !== this.origin) {
        throw new AgentError('GRAPH_ORIGIN_REFUSED', `Refusing to send the access token to ${url.origin}: it is not the configured Graph origin ${this.origin}.`, {
          remedy: 'If Graph really lives there, set MS_GRAPH_URL; otherwise the response that named this URL is not to be trusted.',
        });
      }
      return url;
    }
    return new URL(this.base + (pathOrUrl.startsWith('/') ? pathOrUrl : `/${pathOrUrl}`));
  }

  async request<T>(method: string, pathOrUrl: string, options: GraphRequestOptions = {}): Promise<GraphResponse<T>> {
    const url = this.resolve(pathOrUrl);
    const display = url.pathname.replace(/^\/v1\.0/, '');
    let attempt = 0;
    let waited = 0;
    let refreshed = false;
    for (;;) {
      attempt++;
      options.signal?.throwIfAborted();
      const token = await this.opts.tokens.getAccessToken();
      let response: Response;
      try {
        response = await this.semaphore.run(() => {
          this.count();
          return this.opts.fetch(url, {
            method,
            headers: {
              authorization: `Bearer ${token}`,
              accept: 'application/json',
              // Ids that survive moves [MICROSOFT.md "Graph mail"; outlook-immutable-id].
              prefer: ['IdType="ImmutableId"', ...(options.headers?.prefer ? [options.headers.prefer] : [])].join(', '),
              ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
              ...omit(options.headers, 'prefer'),
            },
            body: options.body === undefined ? undefined : JSON.stringify(options.body),
            signal: options.signal,
            redirect: 'manual',
          });
        });
      } catch (cause) {
        if (options.signal?.aborted) throw cause;
        const delay = this.retry.delayFor({ attempt, waitedMs: waited, idempotent: IDEMPOTENT.has(method), networkError: true });
        if (delay === undefined) {
          throw new GraphError({ status: 0, code: 'NetworkError', message: (cause as Error).message, method, path: display, cause });
        }
        this.opts.log.debug({ method, path: display, delay }, 'graph network error, retrying');
        await this.sleep(delay, options.signal);
        waited += delay;
        continue;
      }
      if (response.status === 401 && !refreshed) {
        await response.body?.cancel();
        // One forced refresh, then one retry [issue: 401 InvalidAuthenticationToken].
        refreshed = true;
        await this.opts.tokens.getAccessToken({ forceRefresh: true });
        continue;
      }
      if (response.status >= 300 && response.status < 400) {
        await response.body?.cancel();
        throw new GraphError({ status: response.status, code: 'UnexpectedRedirect', message: `redirect to ${response.headers.get('location') ?? '(none)'} not followed`, method, path: display });
      }
      if (response.status >= 400) {
        const body = await readJson(response);
        const delay = this.retry.delayFor({ attempt, status: response.status, retryAfter: response.headers.get('retry-after'), waitedMs: waited, idempotent: IDEMPOTENT.has(method) });
        if (delay !== undefined) {
          this.opts.log.debug({ method, path: display, status: response.status, delay }, 'graph throttled or busy, retrying');
          await this.sleep(delay, options.signal);
          waited += delay;
          continue;
        }
        const err = (body.ok && typeof body.value === 'object' && body.value !== null ? (body.value as { error?: { code?: string; message?: string; innerError?: Record<string, string> } }).error : undefined) ?? {};
        throw new GraphError({
          status: response.status,
          code: err.code ?? `HTTP${response.status}`,
          message: err.message ?? (body.ok ? 'no error message' : 'the error body is not JSON'),
          requestId: response.headers.get('request-id') ?? err.innerError?.['request-id'],
          method,
          path: display,
          body: body.ok ? body.value : undefined,
        });
      }
      if (response.status === 202 || response.status === 204) {
        await response.body?.cancel();
        return { status: response.status, body: undefined as T, headers: response.headers };
      }
      const body = await readJson(response);
      if (!body.ok) {
        throw new GraphError({ status: response.status, code: 'InvalidResponse', message: `the response is not JSON (${body.error})`, requestId: response.headers.get('request-id') ?? undefined, method, path: display });
      }
      return { status: response.status, body: body.value as T, headers: response.headers };
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

async function readJson(response: Response): Promise<{ ok: true; value: unknown } | { ok: false; error: string }> {
  const text = await response.text();
  if (text === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}

function omit(headers: Record<string, string> | undefined, key: string): Record<string, string> {
  if (!headers) return {};
  const { [key]: _omitted, ...rest } = headers;
  return rest;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}
