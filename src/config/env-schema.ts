import { z } from 'zod';

/**
 * Every environment variable the agent reads, with its description and default.
 * `.env.example` is kept in sync with this table by a test (test/config/env-example.test.ts).
 */
export interface EnvVar {
  key: string;
  description: string;
  /** Shown in .env.example; undefined = no default. */
  default?: string;
  /** A default computed from other variables (shown in .env.example instead of `default`), e.g. from PORT. */
  derivedDefault?: string;
  schema: z.ZodType<unknown>;
}

const optionalString = z.string().trim().min(1).optional();
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const positiveNumber = z.coerce.number({ error: 'must be a number' }).positive({ error: 'must be greater than 0' });
const httpsOrHttpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://login.microsoftonline.com' });
const duration = z
  .string()
  .regex(/^\d+(\.\d+)?\s*(ms|s|m|h|d)$/, { error: 'must be a duration such as 90s, 30m, 1h or 2d' })
  .transform(parseDuration);

export const ENV_VARS: EnvVar[] = [
  { key: 'MS_CLIENT_ID', description: "Application (client) ID of your app registration in Entra ID. Unset: the agent runs against its built-in sandbox.", schema: optionalString },
  { key: 'MS_TENANT', default: 'common', description: "Tenant GUID, verified domain, 'organizations', 'consumers' or 'common'. After the first sign-in the account's own tenant id is pinned.", schema: z.string().trim().regex(/^[A-Za-z0-9.-]+$/, { error: "must be a tenant GUID, a domain such as contoso.onmicrosoft.com, or common/organizations/consumers" }) },
  { key: 'MS_CLIENT_SECRET', description: 'Optional client secret (its Value, not its Secret ID): delegated as a confidential client, or the app-only credential.', schema: optionalString },
  { key: 'MS_CLIENT_SECRET_EXPIRES', description: "Optional: the date MS_CLIENT_SECRET expires (YYYY-MM-DD, from the app registration's Certificates & secrets); status and doctor warn 30 days before.", schema: z.iso.date({ error: 'must be a date such as 2026-12-31' }).optional() },
  { key: 'MS_CLIENT_CERT', description: 'Path of the PEM certificate registered on the app (app-only; preferred over a secret).', schema: optionalString },
  { key: 'MS_CLIENT_KEY', description: 'Path of the PEM private key of MS_CLIENT_CERT.', schema: optionalString },
  { key: 'MS_REDIRECT_URI', derivedDefault: 'http://localhost:{PORT}/auth/callback', description: 'Redirect URI registered on the app (platform "Mobile and desktop applications" or "Web"). Unset: follows PORT; Entra ignores the port of a localhost redirect URI, so registering http://localhost/auth/callback covers every PORT.', schema: httpsOrHttpUrl },
  { key: 'MS_AUTHORITY_HOST', default: 'https://login.microsoftonline.com', description: 'Identity provider host; endpoints come from OIDC discovery under {host}/{tenant}/v2.0. Change for national clouds or another provider.', schema: httpsOrHttpUrl },
  { key: 'MS_GRAPH_URL', default: 'https://graph.microsoft.com', description: 'Microsoft Graph base URL; the access token is sent to this origin and no other.', schema: httpsOrHttpUrl },
  { key: 'AUTH_MODE', default: 'delegated', description: "'delegated' (you sign in once) or 'app-only' (client credentials, confined to MAILBOX).", schema: z.enum(['delegated', 'app-only'], { error: "must be 'delegated' or 'app-only'" }) },
  { key: 'MAILBOX', description: 'app-only: the one mailbox (UPN) the agent may touch. delegated: if set, only this user may sign in.', schema: z.email({ error: 'must be a mailbox address such as me@contoso.com' }).optional() },
  { key: 'STORE_URL', default: 'sqlite://data/agent.sqlite', description: 'Where tokens and job state live: sqlite://path (processes on one machine), redis://… or postgresql://… (replicas on any host); every process sharing it refreshes the token under its lock.', schema: z.string().trim().regex(/^[a-z][a-z0-9+.-]*:\/\//i, { error: 'must be a URI such as sqlite://data/agent.sqlite' }) },
  { key: 'TOKEN_KEY', description: 'Base64 32-byte key that encrypts tokens at rest. Unset: generated into data/token.key (mode 0600).', schema: z.string().trim().refine((v) => Buffer.from(v, 'base64').length === 32, { error: "must be 32 bytes in base64; make one with: node -e \"console.log(require('crypto').randomBytes(32).toString('base64'))\"" }).optional() },
  { key: 'HOST', default: '127.0.0.1', description: 'Interface the web UI listens on. Anything but loopback requires ADMIN_PASSWORD.', schema: z.string().trim().min(1) },
  { key: 'PORT', default: '3000', description: 'Port of the web UI.', schema: z.coerce.number({ error: 'must be a port number' }).int().min(0).max(65535) },
  { key: 'ADMIN_PASSWORD', description: 'Protects the UI and API; required when HOST is not loopback.', schema: optionalString },
  { key: 'TRUST_PROXY', default: 'false', description: 'Behind a TLS-terminating reverse proxy: trust its X-Forwarded-Proto so dashboard cookies are marked Secure.', schema: bool },
  { key: 'AGENT_CONFIG', default: 'agent.config.yaml', description: 'The jobs file (YAML or JSON).', schema: z.string().trim().min(1) },
  { key: 'NOTIFY_URL', description: 'Webhook POSTed (JSON) when the agent needs a person: dead token, broken confinement, failing job.', schema: httpsOrHttpUrl.optional() },
  { key: 'NOTIFY_AFTER_FAILURES', default: '3', description: 'Tell NOTIFY_URL (and the dashboard) when a job has failed this many runs in a row; one more message when it runs again.', schema: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be a whole number such as 3' }).min(1, { error: 'must be 1 or more' }) },
  { key: 'NOTIFY_REPEAT_HOURS', default: '24', description: 'Reminder interval while a person is still needed.', schema: positiveNumber },
  { key: 'KEEPALIVE_DAYS', default: '7', description: 'Refresh at least this often so the 90-day inactivity limit never bites.', schema: positiveNumber },
  { key: 'CANARY_MAILBOX', description: 'app-only: another real mailbox of the tenant that the agent must NOT be able to read.', schema: z.email({ error: 'must be a mailbox address' }).optional() },
  { key: 'CONFINEMENT_TTL', default: '1h', description: 'app-only: how long a confinement proof is trusted.', schema: duration },
  { key: 'ALLOW_UNCONFINED', default: 'false', description: 'app-only: run even when the canary is readable (warns on every run).', schema: bool },
  { key: 'GRAPH_BUDGET', default: '10000/10m', description: "At most this many Graph requests (each $batch sub-request counting) per mailbox in any window of that length (sliding), shared by every job and every process on the same STORE_URL; Outlook's own limit is 10000/10m.", schema: z.string().trim().regex(/^\d+\s*\/\s*\d+(\.\d+)?\s*(ms|s|m|h|d)$/, { error: 'must be requests/window such as 10000/10m (Outlook\'s limit)' }).transform(parseBudget).refine((b) => b.limit >= 20, { error: 'must allow at least 20 requests (one $batch) per window, e.g. 10000/10m' }) },
  { key: 'DATA_DIR', default: 'data', description: 'Runtime state: the store, the token key, the sandbox files.', schema: z.string().trim().min(1) },
  { key: 'SANDBOX_PORT', default: '3100', description: 'Port of the built-in sandbox (used when MS_CLIENT_ID is unset).', schema: z.coerce.number({ error: 'must be a port number' }).int().min(0).max(65535) },
  { key: 'LOG_LEVEL', default: 'info', description: 'trace, debug, info, warn, error or silent.', schema: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], { error: 'must be one of trace, debug, info, warn, error, silent' }) },
];

/** `10000/10m` → 10,000 requests per 600,000 ms. */
export function parseBudget(text: string): { limit: number; windowMs: number } {
  const [limit = '', window = ''] = text.split('/');
  return { limit: Number(limit.trim()), windowMs: parseDuration(window) };
}

export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${text}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}
