import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/index.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>;

export interface GraphReply {
  status: number;
  headers: Headers;
  bytes: Buffer;
  text: string;
  json: Json;
}

/**
 * A sandbox on an ephemeral port and a raw HTTP client for its Graph, with an app-only token of the
 * confidential app (roles: the registration's, or those given to `newToken`).
 */
export async function startGraphSandbox(opts: Partial<SandboxOptions> = {}) {
  const sb: Sandbox = await startSandbox({ dataDir: mkdtempSync(join(tmpdir(), 'sb-graph-')), port: 0, persist: false, ...opts });
  const agent = new Agent({ connect: { ca: sb.caPem } });
  let token = '';

  /** A new app-only token; with `roles`, the app's consented application permissions become those first. */
  async function newToken(roles?: string[] | null): Promise<string> {
    if (roles !== undefined) sb.admin.setGrantedRoles(sb.confidentialClient.clientId, roles);
    const r = await fetch(`${sb.url}/${sb.tenantId}/oauth2/v2.0/token`, {
      method: 'POST', dispatcher: agent,
      body: new URLSearchParams({
        client_id: sb.confidentialClient.clientId, client_secret: sb.confidentialClient.clientSecret,
        grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default',
      }),
    });
    token = ((await r.json()) as Json).access_token as string;
    return token;
  }

  async function call(path: string, init: { method?: string; headers?: Record<string, string>; body?: unknown; auth?: boolean } = {}): Promise<GraphReply> {
    const raw = init.body === undefined || typeof init.body === 'string' || Buffer.isBuffer(init.body);
    const res = await fetch(path.startsWith('http') ? path : `${sb.url}${path}`, {
      method: init.method ?? 'GET',
      dispatcher: agent,
      headers: {
        ...(init.auth === false ? {} : { authorization: `Bearer ${token}` }),
        ...(raw ? {} : { 'content-type': 'application/json' }),
        ...init.headers,
      },
      body: init.body === undefined ? undefined : raw ? (init.body as string | Buffer) : JSON.stringify(init.body),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    const text = bytes.toString('utf8');
    let json: Json = {};
    try {
      json = JSON.parse(text) as Json;
    } catch { /* not JSON */ }
    return { status: res.status, headers: res.headers as unknown as Headers, bytes, text, json };
  }

  return {
    sb, call, newToken,
    async close() {
      await sb.close();
      await agent.close();
    },
  };
}
