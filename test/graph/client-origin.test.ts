import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/config/logger.ts';
import { GraphClient } from '../../src/graph/client.ts';

/** A Graph stand-in that answers with links to another origin, recording every request it gets. */
function setup(answer: (url: string) => Response) {
  const seen: { url: string; auth: string | null }[] = [];
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', destination: new Writable({ write: (c, _e, done) => { lines.push(String(c)); done(); } }) as never });
  const graph = new GraphClient({
    graphUrl: new URL('https://graph.example.test'),
    tokens: { mode: 'delegated', getAccessToken: async () => 'eyJsecret.token.value', status: async () => ({ mode: 'delegated', state: 'ready', account: null }) },
    fetch: (async (input: URL | string, init?: RequestInit) => {
      const url = String(input);
      seen.push({ url, auth: new Headers(init?.headers).get('authorization') });
      return answer(url);
    }) as never,
    log,
  });
  return { graph, seen, lines };
}

test('an @odata.nextLink on another origin is an error, and no request (no token) goes there', async () => {
  const { graph, seen, lines } = setup(() => Response.json({ value: [{ id: '1' }], '@odata.nextLink': 'https://evil.example/v1.0/me/messages?$skip=10' }));
  const pages: unknown[] = [];
  await assert.rejects(async () => {
    for await (const page of graph.pages('/me/messages')) pages.push(page);
  }, (e: Error & { code?: string }) => e.code === 'GRAPH_ORIGIN_REFUSED' && /evil\.example/.test(e.message));
  assert.equal(pages.length, 1);
  assert.deepEqual(seen.map((s) => new URL(s.url).origin), ['https://graph.example.test']);
  assert.ok(!lines.some((l) => l.includes('eyJsecret')), 'the token is never logged');
});

test('a redirect (Location) to another origin is an error, not followed', async () => {
  const { graph, seen } = setup(() => new Response(null, { status: 302, headers: { location: 'https://evil.example/steal' } }));
  await assert.rejects(graph.get('/me'), (e: Error & { statusCode?: number; remoteCode?: string }) => e.statusCode === 302 && e.remoteCode === 'UnexpectedRedirect');
  assert.equal(seen.length, 1);
});

test('a batched request naming another origin is refused before anything is sent', async () => {
  const { graph, seen } = setup(() => Response.json({ responses: [] }));
  await assert.rejects(graph.batch([{ method: 'GET', url: 'https://evil.example/v1.0/me' }]), /not the configured Graph origin/);
  assert.equal(seen.length, 0);
});
