import { createRequire } from 'node:module';
import type { DestinationStream, Logger } from 'pino';

export type { Logger } from 'pino';

/** Paths pino blanks out wherever they appear: tokens, codes, secrets, cookies, Authorization headers. */
export const REDACT_PATHS = [
  'access_token', 'refresh_token', 'id_token', 'code', 'code_verifier', 'client_secret', 'client_assertion', 'password', 'token',
  '*.access_token', '*.refresh_token', '*.id_token', '*.code', '*.code_verifier', '*.client_secret', '*.client_assertion', '*.password', '*.token',
  'headers.authorization', 'headers.cookie', '*.headers.authorization', '*.headers.cookie', 'req.headers.authorization', 'req.headers.cookie',
  'authorization', 'cookie', 'set-cookie', '*.authorization', '*.cookie',
];

export interface LoggerOptions {
  level?: string;
  destination?: DestinationStream;
  pretty?: boolean;
}

/** pino's levels; a line below the logger's level is dropped. */
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Number.POSITIVE_INFINITY };

/**
 * The one logger factory. Tests pass a `destination` to capture lines and assert on them.
 * pino is loaded when the first line at an enabled level is written (or anything else is asked of the logger), so a
 * command that logs nothing, such as `status` or `run --json`, never loads it (~30 ms of CPU; docs/BENCHMARKS.md).
 * Example: `const log = createLogger({ level: 'info' }); log.child({ job: 'triage' }).info('run started')`.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return deferred(() => pinoLogger(options), options.level ?? 'info');
}

/**
 * A Logger whose pino logger is made by `make` on first need. Until then a child is another deferred logger, made
 * as `real.child(bindings)` when it first writes, and a line below `level` is dropped without loading anything.
 */
function deferred(make: () => Logger, level: string): Logger {
  let real: Logger | undefined;
  const resolve = () => (real ??= make());
  const threshold = LEVELS[level] ?? LEVELS.info!;
  const drop = () => undefined;
  return new Proxy({} as Logger, {
    get(_target, prop) {
      if (!real) {
        if (prop === 'child') {
          return (bindings: Record<string, unknown>, childOptions?: object) => (childOptions ? resolve().child(bindings, childOptions) : deferred(() => resolve().child(bindings), level));
        }
        if (prop === 'level') return level;
        if (prop === 'isLevelEnabled') return (l: string) => (LEVELS[l] ?? Number.POSITIVE_INFINITY) >= threshold;
        if (typeof prop === 'string' && prop !== 'silent' && LEVELS[prop] !== undefined && LEVELS[prop] < threshold) return drop;
      }
      const value: unknown = Reflect.get(resolve(), prop);
      return typeof value === 'function' ? value.bind(real) : value;
    },
    set(_target, prop, value) {
      return Reflect.set(resolve(), prop, value);
    },
  });
}

function pinoLogger(options: LoggerOptions): Logger {
  const load = createRequire(import.meta.url);
  const pino = load('pino') as typeof import('pino');
  // Humans at a terminal get readable lines; services and pipes get JSON. Redaction applies to both.
  const human = options.pretty ?? (!options.destination && Boolean(process.stderr.isTTY));
  // pino-pretty (~10 MB of RSS) is loaded only for a person at a terminal.
  const pretty = human && !options.destination ? (load('pino-pretty') as typeof import('pino-pretty')) : undefined;
  const destination = options.destination ?? (pretty ? pretty({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' }) : pino.destination({ fd: 2, sync: true }));
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: undefined,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    },
    destination,
  );
}

/** Removes anything that looks like a bearer token, JWT, or secret-bearing query parameter from free text. */
export function redactText(text: string): string {
  return text
    .replace(/Bearer\s+[A-Za-z0-9._~+/=-]+/gi, 'Bearer [redacted]')
    .replace(/eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, '[redacted-jwt]')
    .replace(/([?&#](?:code|access_token|refresh_token|id_token|client_secret|token|password)=)[^&#\s]+/gi, '$1[redacted]');
}
