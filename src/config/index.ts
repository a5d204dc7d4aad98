import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import path from 'node:path';
import { ENV_VARS, InvalidValue } from './env-schema.ts';
import { AgentError } from './errors.ts';

export { AgentError, RemoteError, EXIT, exitCodeFor, describeError } from './errors.ts';
export type { ErrorCode } from './errors.ts';
export { ENV_VARS } from './env-schema.ts';

export interface Config {
  /** 'sandbox' when MS_CLIENT_ID is unset: the agent starts and uses the built-in emulator. */
  target: 'sandbox' | 'microsoft';
  clientId?: string;
  tenant: string;
  clientSecret?: string;
  /** MS_CLIENT_SECRET_EXPIRES: the secret's known expiry, for the 30-day warning. */
  clientSecretExpiresAt?: Date;
  clientCertPath?: string;
  clientKeyPath?: string;
  redirectUri: URL;
  /** True when MS_REDIRECT_URI is unset and the redirect URI follows PORT. */
  redirectUriIsDefault: boolean;
  authorityHost: URL;
  graphUrl: URL;
  authMode: 'delegated' | 'app-only';
  mailbox?: string;
  storeUrl: string;
  tokenKey?: Buffer;
  host: string;
  port: number;
  adminPassword?: string;
  trustProxy: boolean;
  agentConfigPath: string;
  notifyUrl?: URL;
  notifyRepeatHours: number;
  notifyAfterFailures: number;
  keepaliveDays: number;
  canaryMailbox?: string;
  confinementTtlMs: number;
  allowUnconfined: boolean;
  /** GRAPH_BUDGET: the mailbox's Graph requests per sliding window. */
  graphBudget: { limit: number; windowMs: number };
  dataDir: string;
  sandboxPort: number;
  logLevel: string;
}

export interface ConfigProblem {
  key: string;
  message: string;
  line?: number;
  /** Where the bad value came from, so the message says where to fix it: a `.env` line, the environment, or not set. */
  where?: string;
}

export class ConfigError extends AgentError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    const lines = problems.map((p) => `  - ${p.key}: ${p.message}${p.where ? ` [${p.where}]` : ''}`);
    super('CONFIG_INVALID', `The configuration is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`, {
      remedy: `Fix ${problems.length === 1 ? 'it' : 'each'} where it is set (a line of the .env file, or a variable of the environment the agent starts in); every variable is described in .env.example.`,
    });
    this.problems = problems;
  }
}

const KNOWN_KEYS = new Set(ENV_VARS.map((v) => v.key));
const OUR_PREFIXES = /^(MS_|AUTH_|TOKEN_|STORE_|NOTIFY_|CANARY_|CONFINEMENT_|ALLOW_|AGENT_|ADMIN_|KEEPALIVE_|SANDBOX_|MAILBOX)/;

/**
 * Reads a `.env` file strictly: every line must be blank, a comment, or KEY=VALUE.
 * dotenv alone skips lines it cannot parse, which would hide a typo such as `MS_CLIENT_ID 1234`.
 * Example: `readEnvFile('.env')` → `{ values: { MS_CLIENT_ID: '…' }, problems: [], lines: Map { 'MS_CLIENT_ID' => 3 } }`.
 */
export function readEnvFile(file: string): { values: Record<string, string>; problems: ConfigProblem[]; lines: Map<string, number> } {
  if (!existsSync(file)) return { values: {}, problems: [], lines: new Map() };
  const text = readFileSync(file, 'utf8');
  const problems: ConfigProblem[] = [];
  const keyLines = new Map<string, number>();
  let quote: string | null = null;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (quote) {
      if (line.endsWith(quote)) quote = null;
      return;
    }
    if (line === '' || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) {
      problems.push({ key: line.slice(0, 40), line: i + 1, message: 'is not KEY=VALUE. Write it as NAME=value (quote values with spaces or #).' });
      return;
    }
    const [, key, value] = m as unknown as [string, string, string];
    const opener = value[0];
    if ((opener === '"' || opener === "'" || opener === '`') && !(value.length > 1 && value.trimEnd().endsWith(opener))) quote = opener;
    if (keyLines.has(key)) problems.push({ key, line: i + 1, message: `is set twice (first on line ${keyLines.get(key)}). Keep one.` });
    keyLines.set(key, i + 1);
    if (!KNOWN_KEYS.has(key) && OUR_PREFIXES.test(key)) {
      const guess = closest(key, [...KNOWN_KEYS]);
      problems.push({ key, line: i + 1, message: `is not a variable the agent knows.${guess ? ` Did you mean ${guess}?` : ''} See .env.example.` });
    }
  });
  if (quote) problems.push({ key: 'quote', message: `a ${quote}-quoted value is never closed. Close the quote.` });
  // dotenv (CommonJS, ~16 ms to load) only when there is a file to read.
  const values = (createRequire(import.meta.url)('dotenv') as typeof import('dotenv')).parse(text);
  for (const [k, line] of keyLines) if (!(k in values)) problems.push({ key: k, line, message: 'could not be parsed. Check its quotes.' });
  return { values, problems, lines: keyLines };
}

export interface LoadConfigOptions {
  /** Path of the .env file; default `.env` in cwd. Values in `env` win over the file, as with dotenv. */
  envFile?: string | false;
  cwd?: string;
  /**
   * For setup helpers (`policy`, `cert`): skip the checks that only a finished setup passes (app-only's
   * credential, MAILBOX and CANARY_MAILBOX), since the helpers are how a person gets there.
   */
  forSetup?: boolean;
}

/**
 * Reads and validates the whole configuration once. Nothing else reads process.env.
 * Example: `const config = loadConfig(process.env)`; throws ConfigError listing every bad key with its fix.
 */
export function loadConfig(env: Record<string, string | undefined>, options: LoadConfigOptions = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const envFile = options.envFile === false ? undefined : path.resolve(cwd, options.envFile ?? '.env');
  const fileName = envFile ? path.relative(cwd, envFile) || '.env' : '.env';
  const fromFile = envFile ? readEnvFile(envFile) : { values: {}, problems: [], lines: new Map<string, number>() };
  const problems: ConfigProblem[] = fromFile.problems.map((p) => ({ ...p, where: p.line ? `${fileName} line ${p.line}` : fileName }));
  const merged: Record<string, string | undefined> = { ...fromFile.values };
  const origin = new Map<string, string>();
  for (const [k, line] of fromFile.lines) origin.set(k, `set in ${fileName} line ${line}`);
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    merged[k] = v;
    origin.set(k, 'set in the environment');
  }
  const whereIs = (key: string) => origin.get(key) ?? 'not set';

  const values: Record<string, unknown> = {};
  for (const v of ENV_VARS) {
    let raw = merged[v.key];
    let where = whereIs(v.key);
    if (raw !== undefined && raw.trim() === '') raw = undefined;
    if (raw === undefined && v.default !== undefined) [raw, where] = [v.default, 'the default'];
    if (raw === undefined) continue;
    try {
      values[v.key] = v.read(raw);
    } catch (error) {
      if (!(error instanceof InvalidValue)) throw error;
      problems.push({ key: v.key, where, message: `${error.message} (got "${redactValue(v.key, raw)}").` });
    }
  }
  const get = <T>(key: string) => values[key] as T;
  const problem = (key: string, message: string) => problems.push({ key, where: whereIs(key), message });

  const clientId = get<string | undefined>('MS_CLIENT_ID');
  const authMode = get<Config['authMode']>('AUTH_MODE') ?? 'delegated';
  const host = get<string>('HOST') ?? '127.0.0.1';
  const adminPassword = get<string | undefined>('ADMIN_PASSWORD');
  if (host && !isLoopback(host) && !adminPassword) {
    problem('HOST', `is "${host}", reachable from other machines, but ADMIN_PASSWORD is not set. Set ADMIN_PASSWORD, or HOST=127.0.0.1 and reach the UI through an SSH tunnel.`);
  }
  const cert = get<string | undefined>('MS_CLIENT_CERT');
  const key = get<string | undefined>('MS_CLIENT_KEY');
  if (Boolean(cert) !== Boolean(key)) {
    problem(cert ? 'MS_CLIENT_KEY' : 'MS_CLIENT_CERT', 'MS_CLIENT_CERT and MS_CLIENT_KEY go together. Set both paths (mailbox-agent cert create makes a pair).');
  }
  for (const [k, p] of [['MS_CLIENT_CERT', cert], ['MS_CLIENT_KEY', key]] as const) {
    if (p && !existsSync(path.resolve(cwd, p))) problem(k, `names ${p}, which does not exist. Fix the path.`);
  }
  if (authMode === 'app-only' && !options.forSetup) {
    if (!clientId) problem('MS_CLIENT_ID', 'is required with AUTH_MODE=app-only. Set the client id of the app registration.');
    if (!get('MAILBOX')) problem('MAILBOX', 'is required with AUTH_MODE=app-only: the one mailbox the agent may touch.');
    if (!get('CANARY_MAILBOX')) problem('CANARY_MAILBOX', 'is required with AUTH_MODE=app-only: another mailbox the agent must NOT be able to read, to prove confinement.');
    if (!cert && !get('MS_CLIENT_SECRET')) problem('MS_CLIENT_CERT', 'app-only needs a credential: set MS_CLIENT_CERT and MS_CLIENT_KEY (preferred; mailbox-agent cert create makes a pair) or MS_CLIENT_SECRET.');
  }
  if (problems.length) throw new ConfigError(problems);

  const port = get<number>('PORT');
  // Entra ignores the port of a localhost redirect URI (docs/microsoft-notes.md "Loopback redirect URIs"), so the
  // default follows PORT and one registration of http://localhost/auth/callback serves every port.
  const redirectUri = get<string | undefined>('MS_REDIRECT_URI') ?? `http://localhost:${port}/auth/callback`;
  const tokenKey = get<string | undefined>('TOKEN_KEY');
  const notifyUrl = get<string | undefined>('NOTIFY_URL');
  return {
    target: clientId ? 'microsoft' : 'sandbox',
    clientId,
    tenant: get<string>('MS_TENANT'),
    clientSecret: get('MS_CLIENT_SECRET'),
    clientSecretExpiresAt: get<string | undefined>('MS_CLIENT_SECRET_EXPIRES') ? new Date(`${get<string>('MS_CLIENT_SECRET_EXPIRES')}T00:00:00Z`) : undefined,
    clientCertPath: cert && path.resolve(cwd, cert),
    clientKeyPath: key && path.resolve(cwd, key),
    redirectUri: new URL(redirectUri),
    redirectUriIsDefault: get<string | undefined>('MS_REDIRECT_URI') === undefined,
    authorityHost: new URL(get<string>('MS_AUTHORITY_HOST')),
    graphUrl: new URL(get<string>('MS_GRAPH_URL')),
    authMode,
    mailbox: get<string | undefined>('MAILBOX')?.toLowerCase(),
    storeUrl: get<string>('STORE_URL'),
    tokenKey: tokenKey ? Buffer.from(tokenKey, 'base64') : undefined,
    host,
    port,
    adminPassword,
    trustProxy: get<boolean>('TRUST_PROXY'),
    agentConfigPath: path.resolve(cwd, get<string>('AGENT_CONFIG')),
    notifyUrl: notifyUrl ? new URL(notifyUrl) : undefined,
    notifyRepeatHours: get<number>('NOTIFY_REPEAT_HOURS'),
    notifyAfterFailures: get<number>('NOTIFY_AFTER_FAILURES'),
    keepaliveDays: get<number>('KEEPALIVE_DAYS'),
    canaryMailbox: get<string | undefined>('CANARY_MAILBOX')?.toLowerCase(),
    confinementTtlMs: get<number>('CONFINEMENT_TTL'),
    allowUnconfined: get<boolean>('ALLOW_UNCONFINED'),
    graphBudget: get<{ limit: number; windowMs: number }>('GRAPH_BUDGET'),
    dataDir: path.resolve(cwd, get<string>('DATA_DIR')),
    sandboxPort: get<number>('SANDBOX_PORT'),
    logLevel: get<string>('LOG_LEVEL'),
  };
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1';
}

function redactValue(key: string, value: string): string {
  return /SECRET|PASSWORD|KEY/.test(key) && !/PATH|CLIENT_KEY/.test(key) ? '***' : value.slice(0, 80);
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const c of candidates) {
    const d = levenshtein(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
