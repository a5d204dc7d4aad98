import { createFetch, type FetchLike } from '../src/config/transport.ts';
import type { TokenProvider } from '../src/auth/types.ts';

export interface SandboxInfo {
  url: string;
  caPem: string;
  tenantId: string;
  client: { clientId: string; clientSecret: string };
}

export const USER = 'alice@contoso.test';
export const ROOT = `/users/${USER}`;

/**
 * Client-credentials tokens from the sandbox (app-only against /users/alice), cached until 5 minutes
 * before expiry: the delegated agent reuses its access token the same way.
 */
export function appTokens(sb: SandboxInfo, f: FetchLike): TokenProvider {
  let cached: { token: string; until: number } | undefined;
  return {
    mode: 'app-only',
    async getAccessToken(options) {
      if (cached && !options?.forceRefresh && cached.until > Date.now()) return cached.token;
      const r = await f(`${sb.url}/${sb.tenantId}/oauth2/v2.0/token`, {
        method: 'POST',
        body: new URLSearchParams({ client_id: sb.client.clientId, client_secret: sb.client.clientSecret, grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default' }),
      });
      const body = (await r.json()) as { access_token: string; expires_in: number };
      cached = { token: body.access_token, until: Date.now() + (body.expires_in - 300) * 1000 };
      return cached.token;
    },
    async status() {
      return { mode: 'app-only', state: 'ready', account: null };
    },
  };
}

export function sandboxFetch(sb: SandboxInfo): FetchLike {
  return createFetch({ origins: [sb.url], caPem: sb.caPem });
}

export async function admin(sb: SandboxInfo, f: FetchLike, route: string, body?: unknown): Promise<any> {
  const r = await f(`${sb.url}/_sandbox${route}`, { method: body === undefined ? 'GET' : 'POST', headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!r.ok) throw new Error(`sandbox admin ${route}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}

/** The benchmark's rules: about 40 % of the generated mail matches. */
export const RULES = [
  { name: 'newsletters', match: { fromDomain: 'news.example.com' }, actions: [{ moveTo: 'Newsletters' }, { markRead: true }] },
  { name: 'urgent', match: { subjectContains: 'urgent' }, actions: [{ flag: true }, { categorize: ['Urgent'] }] },
];

export function isNewsletter(from: string | undefined): boolean {
  return /(^|\.)news\.example\.com$/i.test((from ?? '').split('@')[1] ?? '');
}
export function isUrgent(subject: string | undefined): boolean {
  return /urgent/i.test(subject ?? '');
}
