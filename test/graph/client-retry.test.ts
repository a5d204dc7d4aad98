import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/config/logger.ts';
import { GraphClient } from '../../src/graph/client.ts';
import { GraphError, exponentialRetry } from '../../src/graph/index.ts';

type Answer = Response | Error | ((init: RequestInit) => Promise<Response>);

/** A Graph stand-in that plays `script` in order and records each request's method and path. */
function scripted(script: Answer[], options: { timeoutMs?: number } = {}) {
  const seen: string[] = [];
  const bodies: unknown[] = [];
  const graph = new GraphClient({
    graphUrl: new URL('https://graph.example.test'),
    tokens: { mode: 'delegated', getAccessToken: async () => 'token', status: async () => ({ mode: 'delegated', state: 'ready', account: null }) },
    fetch: (async (input: URL | string, init?: RequestInit) => {
      seen.push(`${init?.method} ${new URL(String(input)).pathname.replace('/v1.0', '')}`);
      bodies.push(init?.body ? JSON.parse(String(init.body)) : undefined);
      const next = script.shift();
      if (!next) throw new Error('the script ran out');
      if (next instanceof Error) throw next;
      return typeof next === 'function' ? next(init ?? {}) : next;
    }) as never,
    log: createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, done) => done() }) as never }),
    retry: exponentialRetry({ baseMs: 1, capMs: 2 }),
    ...options,
  });
  return { graph, seen, bodies };
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) => Response.json(body, { status, headers });
const graphError = (status: number, code: string) => json({ error: { code, message: code } }, status);
/** A fetch failure as undici reports it: "fetch failed" with the reason in `cause`. */
const fetchFailed = (code: string, message: string) => Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error(message), { code }) });
/** A 200 whose body stops half-way: reading it fails like a dropped connection. */
const cutOff = () => new Response(new ReadableStream({
  start(controller) {
    controller.enqueue(new TextEncoder().encode('{"value":[{"id":"AAMk'));
    controller.error(Object.assign(new TypeError('terminated'), { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) }));
  },
}), { status: 200, headers: { 'content-type': 'application/json' } });

test('a GET whose 200 is malformed or cut off, or whose connection resets, is sent again like after a 503', async () => {
  const { graph, seen } = scripted([new Response('{"value":[{"id":"AAMkAG', { status: 200 }), cutOff(), fetchFailed('ECONNRESET', 'read ECONNRESET'), graphError(502, 'BadGateway'), json({ value: [] })]);
  const r = await graph.get<{ value: unknown[] }>('/me/mailFolders/msgfolderroot/childFolders');
  assert.deepEqual(r.body, { value: [] });
  assert.equal(seen.length, 5);
});

test('a GET that keeps answering garbage fails with InvalidResponse, which a job treats as worth another run', async () => {
  const { graph } = scripted(Array.from({ length: 6 }, () => new Response('<html>oops</html>', { status: 200 })));
  const error = await graph.get('/me/mailFolders/inbox').catch((e: unknown) => e);
  assert.ok(error instanceof GraphError);
  assert.equal(error.remoteCode, 'InvalidResponse');
  assert.match(error.message, /not JSON/);
  assert.equal(error.transient, true);
});

test('a forward (POST) is not re-sent after a 500, 502, 504 or a reset once sent: its fate is unknown', async () => {
  for (const answer of [graphError(500, 'generalException'), graphError(502, 'BadGateway'), graphError(504, 'GatewayTimeout'), fetchFailed('ECONNRESET', 'read ECONNRESET'), cutOff()]) {
    const { graph, seen } = scripted([answer, new Response(null, { status: 202 })]);
    const error = await graph.post('/me/messages/AAk=/forward', { toRecipients: [] }).catch((e: unknown) => e);
    assert.ok(error instanceof GraphError, String(error));
    assert.equal(error.executed, 'unknown', error.message);
    assert.equal(seen.length, 1, `${error.message}: sent once only`);
  }
});

test('a forward is re-sent after 429, 503 or a connection never made: Graph did not run it', async () => {
  const { graph, seen } = scripted([
    json({ error: { code: 'TooManyRequests' } }, 429, { 'retry-after': '0.001' }),
    graphError(503, 'ServiceUnavailable'),
    fetchFailed('ECONNREFUSED', 'connect ECONNREFUSED'),
    new Response(null, { status: 202 }),
  ]);
  const r = await graph.post('/me/messages/AAk=/forward', { toRecipients: [] });
  assert.equal(r.status, 202);
  assert.equal(seen.length, 4);
});

test('a request with no complete answer in time fails like a reset: a GET is sent again, a sendMail is not', async () => {
  // A server that never answers (the timer only keeps the test process alive: the client's deadline is unref'd).
  const hang = (init: RequestInit) => new Promise<Response>((_resolve, reject) => {
    const alive = setTimeout(() => reject(new Error('the client never gave up')), 10_000);
    init.signal?.addEventListener('abort', () => {
      clearTimeout(alive);
      reject(init.signal!.reason);
    });
  });
  const get = scripted([hang, json({ id: 'x' })], { timeoutMs: 20 });
  assert.deepEqual((await get.graph.get('/me')).body, { id: 'x' });
  const send = scripted([hang, new Response(null, { status: 202 })], { timeoutMs: 20 });
  const error = await send.graph.post('/me/sendMail', {}).catch((e: unknown) => e);
  assert.ok(error instanceof GraphError);
  assert.equal(error.remoteCode, 'Timeout');
  assert.equal(error.executed, 'unknown');
  assert.equal(send.seen.length, 1);
});

test('$batch: each sub-response by the same rule; a forward after a 504 is not re-sent, a PATCH and a move are', async () => {
  const { graph, seen, bodies } = scripted([
    json({ responses: [
      { id: '0', status: 504, body: { error: { code: 'GatewayTimeout', message: 'late' } } },
      { id: '1', status: 504, body: { error: { code: 'GatewayTimeout', message: 'late' } } },
      { id: '2', status: 500, body: { error: { code: 'generalException', message: 'oops' } } },
      { id: '3', status: 429, headers: { 'Retry-After': '0.001' }, body: { error: { code: 'TooManyRequests', message: 'slow down' } } },
    ] }),
    json({ responses: [{ id: '0', status: 200, body: {} }, { id: '2', status: 201, body: {} }, { id: '3', status: 202 }] }),
  ]);
  const results = await graph.batch([
    { method: 'PATCH', url: '/me/messages/A', body: { isRead: true } },
    { method: 'POST', url: '/me/messages/A/forward', body: { toRecipients: [] } },
    { method: 'POST', url: '/me/messages/B/move', body: { destinationId: 'archive' }, idempotent: true },
    { method: 'POST', url: '/me/messages/C/forward', body: { toRecipients: [] } },
  ]);
  assert.deepEqual(results.map((r) => [r.status, r.executed]), [[200, true], [504, 'unknown'], [201, true], [202, true]]);
  assert.equal(seen.length, 2);
  assert.deepEqual((bodies[1] as { requests: { id: string }[] }).requests.map((r) => r.id), ['0', '2', '3'], 'only what may be sent again');
});

test('$batch: a whole batch holding a forward is not re-sent after a 502 or a reset; its requests are all unknown', async () => {
  for (const answer of [graphError(502, 'BadGateway'), fetchFailed('UND_ERR_SOCKET', 'other side closed')]) {
    const { graph, seen } = scripted([answer, json({ responses: [] })]);
    const results = await graph.batch([{ method: 'PATCH', url: '/me/messages/A', body: { isRead: true } }, { method: 'POST', url: '/me/messages/A/forward', body: {} }]);
    assert.equal(seen.length, 1);
    assert.deepEqual(results.map((r) => r.executed), ['unknown', 'unknown']);
  }
  const { graph, seen } = scripted([graphError(502, 'BadGateway'), new Response('{"responses":[{"id":"0","sta', { status: 200 }), json({ responses: [{ id: '0', status: 200, body: {} }] })]);
  const [only] = await graph.batch([{ method: 'PATCH', url: '/me/messages/A', body: { isRead: true } }]);
  assert.equal(only!.status, 200, 'a batch of PATCHes alone is sent again after a 502 and after a malformed answer');
  assert.equal(seen.length, 3);
});
