/**
 * Every environment variable the agent reads, with its description, its default and how its text is read.
 * `.env.example` is kept in sync with this table by a test (test/config/env.test.ts).
 *
 * The readers are plain functions rather than a schema library: every command reads the configuration first,
 * and zod's 95 modules were the largest part of `status`'s start-up (docs/BENCHMARKS.md). Each reader keeps the
 * rule and the message it had under zod (test/config/env.test.ts, test/config/env-readers.test.ts).
 */
export interface EnvVar {
  key: string;
  description: string;
  /** Shown in .env.example; undefined = no default. */
  default?: string;
  /** A default computed from other variables (shown in .env.example instead of `default`), e.g. from PORT. */
  derivedDefault?: string;
  /** Reads the variable's text (never blank: a blank value counts as unset) or throws InvalidValue. */
  read: ReadValue;
}

export type ReadValue = (raw: string) => unknown;

/** A value that does not fit its variable; the message says what it must be, e.g. "must be a port number". */
export class InvalidValue extends Error {}

const invalid = (message: string): never => {
  throw new InvalidValue(message);
};

const trimmed: ReadValue = (raw) => raw.trim();

/** The trimmed text, when it matches. */
const matching = (pattern: RegExp, message: string): ReadValue => (raw) => (pattern.test(raw.trim()) ? raw.trim() : invalid(message));

const oneOf = (values: readonly string[], message: string): ReadValue => (raw) => (values.includes(raw) ? raw : invalid(message));

const bool: ReadValue = (raw) => (['true', '1', 'yes'].includes(raw) ? true : ['false', '0', 'no'].includes(raw) ? false : invalid('must be true or false'));

/** `Number(raw)` as zod's coerce did: '8080' and ' 8080 ' are 8080; 'eighty', NaN and Infinity are refused. */
function number(raw: string, message: string): number {
  const n = Number(raw);
  return Number.isFinite(n) ? n : invalid(message);
}

const port: ReadValue = (raw) => {
  const n = number(raw, 'must be a port number');
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : invalid('must be a port number from 0 to 65535');
};

const positiveNumber: ReadValue = (raw) => {
  const n = number(raw, 'must be a number');
  return n > 0 ? n : invalid('must be greater than 0');
};

const wholeNumberFrom1: ReadValue = (raw) => {
  const n = number(raw, 'must be a number');
  if (!Number.isInteger(n)) invalid('must be a whole number such as 3');
  return n >= 1 ? n : invalid('must be 1 or more');
};

/** An absolute http(s) URL, written with its `//` (`http:example.com` is refused); tabs and line breaks are dropped as the URL parser drops them. */
const httpUrl: ReadValue = (raw) => {
  const url = raw.trim();
  return /^https?:\/\//i.test(url) && URL.canParse(url) ? url.replace(/[\t\n\r]/g, '') : invalid('must be an http(s) URL such as https://login.microsoftonline.com');
};

/** The address pattern zod's z.email() used, so an address accepted before is accepted now. */
const EMAIL = /^(?:[A-Za-z0-9_'+\-]+\.)*[A-Za-z0-9_'+\-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}$/;
const email = (message: string): ReadValue => (raw) => (EMAIL.test(raw) ? raw : invalid(message));

/** A calendar date, YYYY-MM-DD, that exists (2026-02-30 does not). */
const isoDate: ReadValue = (raw) => {
  const valid = /^\d{4}-\d{2}-\d{2}$/.test(raw) && new Date(`${raw}T00:00:00Z`).toISOString().startsWith(raw);
  return valid ? raw : invalid('must be a date such as 2026-12-31');
};

const DURATION = /^\d+(\.\d+)?\s*(ms|s|m|h|d)$/;
const duration: ReadValue = (raw) => (DURATION.test(raw) ? parseDuration(raw) : invalid('must be a duration such as 90s, 30m, 1h or 2d'));

const tokenKey: ReadValue = (raw) => {
  const key = raw.trim();
  return Buffer.from(key, 'base64').length === 32 ? key : invalid("must be 32 bytes in base64; make one with: node -e \"console.log(require('crypto').randomBytes(32).toString('base64'))\"");
};

const graphBudget: ReadValue = (raw) => {
  const text = raw.trim();
  if (!/^\d+\s*\/\s*\d+(\.\d+)?\s*(ms|s|m|h|d)$/.test(text)) invalid("must be requests/window such as 10000/10m (Outlook's limit)");
  const budget = parseBudget(text);
  return budget.limit >= 20 ? budget : invalid('must allow at least 20 requests (one $batch) per window, e.g. 10000/10m');
};

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export const ENV_VARS: EnvVar[] = [
  { key: 'MS_CLIENT_ID', description: "Application (client) ID of your app registration in Entra ID. Unset: the agent runs against its built-in sandbox.", read: trimmed },
  { key: 'MS_TENANT', default: 'common', description: "Tenant GUID, verified domain, 'organizations', 'consumers' or 'common'. After the first sign-in the account's own tenant id is pinned.", read: matching(/^[A-Za-z0-9.-]+$/, 'must be a tenant GUID, a domain such as contoso.onmicrosoft.com, or common/organizations/consumers') },
  { key: 'MS_CLIENT_SECRET', description: 'Optional client secret (its Value, not its Secret ID): delegated as a confidential client, or the app-only credential.', read: trimmed },
  { key: 'MS_CLIENT_SECRET_EXPIRES', description: "Optional: the date MS_CLIENT_SECRET expires (YYYY-MM-DD, from the app registration's Certificates & secrets); status and doctor warn 30 days before.", read: isoDate },
  { key: 'MS_CLIENT_CERT', description: 'Path of the PEM certificate registered on the app (app-only; preferred over a secret).', read: trimmed },
  { key: 'MS_CLIENT_KEY', description: 'Path of the PEM private key of MS_CLIENT_CERT.', read: trimmed },
  { key: 'MS_REDIRECT_URI', derivedDefault: 'http://localhost:{PORT}/auth/callback', description: 'Redirect URI registered on the app (platform "Mobile and desktop applications" or "Web"). Unset: follows PORT; Entra ignores the port of a localhost redirect URI, so registering http://localhost/auth/callback covers every PORT.', read: httpUrl },
  { key: 'MS_AUTHORITY_HOST', default: 'https://login.microsoftonline.com', description: 'Identity provider host; endpoints come from OIDC discovery under {host}/{tenant}/v2.0. Change for national clouds or another provider.', read: httpUrl },
  { key: 'MS_GRAPH_URL', default: 'https://graph.microsoft.com', description: 'Microsoft Graph base URL; the access token is sent to this origin and no other.', read: httpUrl },
  { key: 'AUTH_MODE', default: 'delegated', description: "'delegated' (you sign in once) or 'app-only' (client credentials, confined to MAILBOX).", read: oneOf(['delegated', 'app-only'], "must be 'delegated' or 'app-only'") },
  { key: 'MAILBOX', description: 'app-only: the one mailbox (UPN) the agent may touch. delegated: if set, only this user may sign in.', read: email('must be a mailbox address such as me@contoso.com') },
  { key: 'STORE_URL', default: 'sqlite://data/agent.sqlite', description: 'Where tokens and job state live: sqlite://path (processes on one machine), redis://… or postgresql://… (replicas on any host); every process sharing it refreshes the token under its lock.', read: matching(/^[a-z][a-z0-9+.-]*:\/\//i, 'must be a URI such as sqlite://data/agent.sqlite') },
  { key: 'TOKEN_KEY', description: 'Base64 32-byte key that encrypts tokens at rest. Unset: generated into data/token.key (mode 0600).', read: tokenKey },
  { key: 'HOST', default: '127.0.0.1', description: 'Interface the web UI listens on. Anything but loopback requires ADMIN_PASSWORD.', read: trimmed },
  { key: 'PORT', default: '3000', description: 'Port of the web UI.', read: port },
  { key: 'ADMIN_PASSWORD', description: 'Protects the UI and API; required when HOST is not loopback.', read: trimmed },
  { key: 'TRUST_PROXY', default: 'false', description: 'Behind a TLS-terminating reverse proxy: trust its X-Forwarded-Proto so dashboard cookies are marked Secure.', read: bool },
  { key: 'AGENT_CONFIG', default: 'agent.config.yaml', description: 'The jobs file (YAML or JSON).', read: trimmed },
  { key: 'NOTIFY_URL', description: 'Webhook POSTed (JSON) when the agent needs a person: dead token, broken confinement, failing job.', read: httpUrl },
  { key: 'NOTIFY_AFTER_FAILURES', default: '3', description: 'Tell NOTIFY_URL (and the dashboard) when a job has failed this many runs in a row; one more message when it runs again.', read: wholeNumberFrom1 },
  { key: 'NOTIFY_REPEAT_HOURS', default: '24', description: 'Reminder interval while a person is still needed.', read: positiveNumber },
  { key: 'KEEPALIVE_DAYS', default: '7', description: 'Refresh at least this often so the 90-day inactivity limit never bites.', read: positiveNumber },
  { key: 'CANARY_MAILBOX', description: 'app-only: another real mailbox of the tenant that the agent must NOT be able to read.', read: email('must be a mailbox address') },
  { key: 'CONFINEMENT_TTL', default: '1h', description: 'app-only: how long a confinement proof is trusted.', read: duration },
  { key: 'ALLOW_UNCONFINED', default: 'false', description: 'app-only: run even when the canary is readable (warns on every run).', read: bool },
  { key: 'GRAPH_BUDGET', default: '10000/10m', description: "At most this many Graph requests (each $batch sub-request counting) per mailbox in any window of that length (sliding), shared by every job and every process on the same STORE_URL; Outlook's own limit is 10000/10m.", read: graphBudget },
  { key: 'DATA_DIR', default: 'data', description: 'Runtime state: the store, the token key, the sandbox files.', read: trimmed },
  { key: 'SANDBOX_PORT', default: '3100', description: 'Port of the built-in sandbox (used when MS_CLIENT_ID is unset).', read: port },
  { key: 'LOG_LEVEL', default: 'info', description: 'trace, debug, info, warn, error or silent.', read: oneOf(LOG_LEVELS, 'must be one of trace, debug, info, warn, error, silent') },
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
