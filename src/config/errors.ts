/**
 * Every error the agent raises carries a stable code, whether it needs a person,
 * and what to do about it. "Microsoft said no" (`RemoteError`) and "our own check
 * failed" (`AgentError`) are distinct classes, as in openid-client's OPError/RPError.
 */

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'JOBS_FILE_INVALID'
  | 'USAGE'
  | 'SIGNED_OUT'
  | 'NEEDS_SIGNIN'
  | 'SIGNIN_REFUSED'
  | 'SIGNIN_STATE_INVALID'
  | 'AUTH_CONFIG'
  | 'AUTH_TRANSIENT'
  | 'GRAPH_ERROR'
  | 'GRAPH_ORIGIN_REFUSED'
  /** App-only: a path outside /users/{MAILBOX}. */
  | 'MAILBOX_REFUSED'
  /** App-only: the canary mailbox is readable, so the app can read the whole tenant. */
  | 'UNCONFINED'
  /** App-only: confinement could not be proven (target denied, canary missing, probe failed). */
  | 'CONFINEMENT_UNPROVEN'
  | 'JOB_NOT_FOUND'
  | 'JOB_BUSY'
  | 'STORE_ERROR'
  | 'LOCK_TIMEOUT'
  | 'SHUTTING_DOWN'
  | 'KEY_INVALID'
  | 'INTERNAL';

/** Exit status per DESIGN.md: 0 ok, 1 failed, 2 a person is needed, 64 usage error. */
export const EXIT = { ok: 0, failed: 1, needsPerson: 2, usage: 64 } as const;

const NEEDS_PERSON: ReadonlySet<ErrorCode> = new Set(['SIGNED_OUT', 'NEEDS_SIGNIN', 'SIGNIN_REFUSED', 'AUTH_CONFIG', 'UNCONFINED', 'CONFINEMENT_UNPROVEN']);

/** Whether an error code means a person must act (exit status 2). */
export function codeNeedsPerson(code: string | undefined): boolean {
  return code !== undefined && NEEDS_PERSON.has(code as ErrorCode);
}

export interface AgentErrorOptions {
  /** What the user should do, in plain words. */
  remedy?: string;
  cause?: unknown;
  /** HTTP status when the error reaches the web surface. */
  status?: number;
  /** Safe to show to the user as is (no secrets inside). Defaults to true. */
  expose?: boolean;
}

export class AgentError extends Error {
  readonly code: ErrorCode;
  readonly remedy?: string;
  readonly status: number;
  readonly expose: boolean;

  constructor(code: ErrorCode, message: string, options: AgentErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentError';
    this.code = code;
    this.remedy = options.remedy;
    this.status = options.status ?? 500;
    this.expose = options.expose ?? true;
  }

  get needsPerson(): boolean {
    return NEEDS_PERSON.has(this.code);
  }
}

/** A remote service (Entra ID, Graph) refused. `details` stay non-enumerable so logging never dumps a body. */
export class RemoteError extends AgentError {
  readonly service: 'entra' | 'graph' | 'webhook';
  readonly remoteCode?: string;
  declare readonly details?: unknown;

  constructor(
    service: RemoteError['service'],
    code: ErrorCode,
    message: string,
    options: AgentErrorOptions & { remoteCode?: string; details?: unknown } = {},
  ) {
    super(code, message, options);
    this.name = 'RemoteError';
    this.service = service;
    this.remoteCode = options.remoteCode;
    Object.defineProperty(this, 'details', { value: options.details, enumerable: false });
  }
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof AgentError) {
    if (error.code === 'USAGE') return EXIT.usage;
    if (error.needsPerson) return EXIT.needsPerson;
  }
  return EXIT.failed;
}

/** One line for a terminal or a JSON field: message, then the remedy. */
export function describeError(error: unknown): string {
  if (error instanceof AgentError) {
    return error.remedy ? `${error.message} ${error.remedy}` : error.message;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
