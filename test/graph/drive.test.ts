import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/config/logger.ts';
import { GraphClient } from '../../src/graph/client.ts';
import { Drive } from '../../src/graph/drive.ts';

interface Seen {
  method: string;
  url: string;
  auth: string | null;
  type: string | null;
  range: string | null;
  body?: Buffer;
}

/** Graph on graph.example.test whose upload URLs are on another host, like OneDrive's; `simpleMax` bytes per simple upload. */
function setup(simpleMax: number) {
  const seen: Seen[] = [];
  let received = 0;
  const log = createLogger({ level: 'error', destination: new Writable({ write: (_c, _e, done) => done() }) as never });
  const graph = new GraphClient({
    graphUrl: new URL('https://graph.example.test'),
    tokens: { mode: 'delegated', getAccessToken: async () => 'eyJsecret', status: async () => ({ mode: 'delegated', state: 'ready', account: null }) },
    fetch: (async (input: URL | string, init?: RequestInit) => {
      const h = new Headers(init?.headers);
      const body = init?.body instanceof Uint8Array ? Buffer.from(init.body) : undefined;
      const url = String(input);
      seen.push({ method: String(init?.method), url, auth: h.get('authorization'), type: h.get('content-type'), range: h.get('content-range'), body });
      if (url.includes('/content')) {
        return body!.length > simpleMax ? Response.json({ error: { code: 'requestEntityTooLarge', message: 'too large' } }, { status: 413 }) : Response.json({ id: '1', name: 'a.pdf', size: body!.length }, { status: 201 });
      }
      if (url.endsWith('createUploadSession')) return Response.json({ uploadUrl: 'https://upload.example.net/up/AbCdEfGhIjKlMnOpQrSt?tempauth=secret' });
      const [, first, , total] = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(h.get('content-range') ?? '')!.map(Number);
      assert.equal(first, received);
      received += body!.length;
      return received < total! ? Response.json({ nextExpectedRanges: [`${received}-`] }, { status: 202 }) : Response.json({ id: '2', name: 'a.pdf', size: total }, { status: 201 });
    }) as never,
    log,
  });
  return { graph, seen };
}

test('a small file is one PUT of its bytes with their content type, counted as a Graph request', async () => {
  const { graph, seen } = setup(1000);
  const bytes = Buffer.from([0, 1, 2, 255, 254]);
  const file = await new Drive(graph, '/me').upload('/Receipts/a b.pdf', bytes, 'application/pdf');
  assert.equal(file.size, 5);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.method, 'PUT');
  assert.equal(seen[0]!.url, 'https://graph.example.test/v1.0/me/drive/root:/Receipts/a%20b.pdf:/content?@microsoft.graph.conflictBehavior=fail');
  assert.equal(seen[0]!.type, 'application/pdf');
  assert.equal(seen[0]!.auth, 'Bearer eyJsecret');
  assert.ok(seen[0]!.body!.equals(bytes), 'the bytes as they are, not JSON');
  assert.equal(graph.requests, 1);
});

test('over the limit: an upload session in ranges of 320 KiB multiples to the other host, never with the token', async () => {
  const { graph, seen } = setup(1000);
  const bytes = Buffer.alloc(2 * 327_680 + 10, 7);
  await new Drive(graph, '/me', 327_680).upload('/Receipts/a.pdf', bytes, 'application/pdf');
  assert.deepEqual(seen.map((s) => `${s.method} ${new URL(s.url).host}`), ['PUT graph.example.test', 'POST graph.example.test', 'PUT upload.example.net', 'PUT upload.example.net', 'PUT upload.example.net']);
  assert.deepEqual(seen.slice(2).map((s) => s.range), ['bytes 0-327679/655370', 'bytes 327680-655359/655370', 'bytes 655360-655369/655370']);
  assert.ok(seen.slice(2).every((s) => s.auth === null), 'no Authorization header to the upload URL');
  assert.ok(Buffer.concat(seen.slice(2).map((s) => s.body!)).equals(bytes));
  assert.equal(graph.requests, 2, 'the upload URL PUTs are not Graph requests');
});
