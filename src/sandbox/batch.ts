import { EventEmitter } from 'node:events';
import type { Request, Response } from 'express';

/**
 * JSON batching as Graph does it [MICROSOFT.md "Batching, throttling, errors"; json-batching]:
 * `POST /v1.0/$batch {requests: [{id, method, url, headers?, body?, dependsOn?}]}`, at most 20, ids unique,
 * urls relative to the version. The outer answer is 200 once the payload parses; each sub-request gets its
 * own `{id, status, headers, body}` (any order). Up to 4 sub-requests run at once, one at a time along a
 * `dependsOn` chain; a sub-request whose dependency failed is not run and gets 424. Every sub-request goes
 * through the same handler as a real request, so it is authenticated, throttled on its own (429 + its
 * Retry-After), holds a mailbox concurrency slot while it runs, and can be faulted.
 */
export const BATCH_MAX = 20;
const BATCH_PARALLEL = 4;

export class BatchError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

interface BatchItem {
  id: string;
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
  dependsOn?: string[];
}

export interface BatchResponse {
  id: string;
  status: number;
  headers: Record<string, string>;
  body?: unknown;
}

type Serve = (req: Request, res: Response, id: string) => Promise<void>;

function parse(text: string): BatchItem[] {
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    throw new BatchError(400, 'BadRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.');
  }
  const requests = (payload as { requests?: unknown } | null)?.requests;
  if (!Array.isArray(requests) || requests.length === 0) throw new BatchError(400, 'BadRequest', 'Invalid batch payload format: a non-empty "requests" array is required.');
  if (requests.length > BATCH_MAX) throw new BatchError(400, 'BadRequest', `Invalid batch payload format: the number of requests (${requests.length}) exceeds the limit of ${BATCH_MAX}.`);
  const ids = new Set<string>();
  const items = requests.map((raw, i) => {
    const r = raw as Partial<BatchItem> | null;
    if (!r || typeof r.id !== 'string' || r.id === '') throw new BatchError(400, 'BadRequest', `Invalid batch payload format: request ${i} has no id.`);
    if (ids.has(r.id)) throw new BatchError(400, 'BadRequest', `Invalid batch payload format: the request id '${r.id}' is used twice; ids must be unique.`);
    ids.add(r.id);
    if (typeof r.method !== 'string' || !/^(GET|POST|PATCH|PUT|DELETE)$/i.test(r.method)) throw new BatchError(400, 'BadRequest', `Invalid batch payload format: request '${r.id}' has an invalid method.`);
    if (typeof r.url !== 'string' || /^[a-z][a-z0-9+.-]*:/i.test(r.url) || r.url.startsWith('//')) {
      throw new BatchError(400, 'BadRequest', `Invalid batch payload format: request '${r.id}' needs a relative url (e.g. /me/messages/{id}).`);
    }
    if (r.dependsOn !== undefined && (!Array.isArray(r.dependsOn) || !r.dependsOn.every((d) => typeof d === 'string'))) {
      throw new BatchError(400, 'BadRequest', `Invalid batch payload format: request '${r.id}' has an invalid dependsOn.`);
    }
    return { id: r.id, method: r.method.toUpperCase(), url: r.url, headers: r.headers, body: r.body, dependsOn: r.dependsOn } as BatchItem;
  });
  for (const item of items) {
    for (const dep of item.dependsOn ?? []) {
      if (!ids.has(dep) || dep === item.id) throw new BatchError(400, 'BadRequest', `Invalid batch payload format: request '${item.id}' depends on unknown request '${dep}'.`);
    }
  }
  return items;
}

/** A request-like object for one sub-request, and a response-like one that captures what the handler sends. */
class CapturedResponse extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  private readonly headers = new Map<string, string>();
  text: string | undefined;

  status(code: number): this {
    this.statusCode = code;
    return this;
  }
  setHeader(name: string, value: string | number | readonly string[]): this {
    this.headers.set(name.toLowerCase(), Array.isArray(value) ? value.join(', ') : String(value));
    return this;
  }
  getHeader(name: string): string | undefined {
    return this.headers.get(name.toLowerCase());
  }
  type(value: string): this {
    return this.setHeader('content-type', value);
  }
  send(body: string): this {
    this.text = body;
    return this.end();
  }
  end(): this {
    if (this.headersSent) return this;
    this.headersSent = true;
    this.emit('finish');
    return this;
  }
  headerObject(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of this.headers) {
      if (k === 'strict-transport-security' || k === 'x-ms-ags-diagnostic') continue;
      out[k === 'content-type' ? 'Content-Type' : k === 'retry-after' ? 'Retry-After' : k] = v;
    }
    return out;
  }
}

async function runItem(item: BatchItem, outer: Request, serve: Serve): Promise<BatchResponse> {
  const url = item.url.startsWith('/') ? item.url : `/${item.url}`;
  const q = url.indexOf('?');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(item.headers ?? {})) headers[k.toLowerCase()] = String(v);
  headers.authorization = String(outer.headers.authorization ?? '');
  if (!headers.prefer && outer.headers.prefer) headers.prefer = String(outer.headers.prefer);
  const req = {
    method: item.method,
    headers,
    path: decodeURI(q >= 0 ? url.slice(0, q) : url),
    originalUrl: `/v1.0${url}`,
    body: item.body === undefined ? '' : typeof item.body === 'string' ? item.body : JSON.stringify(item.body),
    socket: outer.socket,
  } as unknown as Request;
  const res = new CapturedResponse();
  await serve(req, res as unknown as Response, item.id);
  let body: unknown;
  if (res.text !== undefined && res.text !== '') {
    try {
      body = JSON.parse(res.text);
    } catch {
      body = res.text;
    }
  }
  return { id: item.id, status: res.statusCode, headers: res.headerObject(), ...(body !== undefined ? { body } : {}) };
}

export async function runBatch(text: string, outer: Request, serve: Serve): Promise<{ responses: BatchResponse[] }> {
  const items = parse(text);
  const results = new Map<string, BatchResponse>();
  const started = new Set<string>();
  const responses: BatchResponse[] = [];
  let running = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      if (results.size === items.length) return resolve();
      let progressed = true;
      while (progressed) {
      progressed = false;
      for (const item of items) {
        if (started.has(item.id)) continue;
        const deps = item.dependsOn ?? [];
        if (!deps.every((d) => results.has(d))) continue;
        if (deps.some((d) => results.get(d)!.status >= 400)) {
          started.add(item.id);
          const failed = { id: item.id, status: 424, headers: { 'Content-Type': 'application/json' }, body: { error: { code: 'FailedDependency', message: 'The request was not executed because of a failed dependency.' } } };
          results.set(item.id, failed);
          responses.push(failed);
          progressed = true;
          continue;
        }
        if (running >= BATCH_PARALLEL) continue;
        started.add(item.id);
        running++;
        runItem(item, outer, serve).then((r) => {
          running--;
          results.set(item.id, r);
          responses.push(r);
          pump();
        }, reject);
      }
      }
      if (results.size === items.length) resolve();
      else if (running === 0 && started.size === items.length) resolve();
      else if (running === 0) reject(new BatchError(400, 'BadRequest', 'Invalid batch payload format: the dependsOn references form a cycle.'));
    };
    pump();
  });
  return { responses };
}
