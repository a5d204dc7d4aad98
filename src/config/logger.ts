import pino, { type Logger, type DestinationStream } from 'pino';
import { createRequire } from 'node:module';

export type { Logger } from 'pino';

/** Paths pino blanks out wherever they appear: tokens, codes, secrets, cookies, Authorization headers. */
export const REDACT_PATHS = [
  'access_token', 'refresh_token', 'id_token', 'code', 'code_verifier', 'client_secret', 'client_assertion', 'password', 'token',
  '*.access_token', '*.refresh_token', '*.id_token', '*.code', '*.code_verifier', '*.client_secret', '*.client_assertion', '*.password', '*.token',
  'headers.authorization', 'headers.cookie', '*.headers.authorization', '*.headers.cookie', 'req.headers.authorization', 'req.headers.cookie',
  'authorization', 'cookie', 'set-cookie', '*.authorization', '*.cookie',
];

/**
 * The one logger factory. Tests pass a `destination` to capture lines and assert on them.
 * Example: `const log = createLogger({ level: 'info' }); log.child({ job: 'triage' }).info('run started')`.
 */
export function createLogger(options: { level?: string; destination?: DestinationStream; pretty?: boolean } = {}): Logger {
  // Humans at a terminal get readable lines; services and pipes get JSON. Redaction applies to both.
  const human = options.pretty ?? (!options.destination && Boolean(process.stderr.isTTY));
  // pino-pretty (~10 MB of RSS) is loaded only for a person at a terminal.
  const pretty = human && !options.destination ? (createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty')) : undefined;
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
