import type { SigningMaterial } from './certificates.ts';
import type { FaultInjector } from './faults.ts';
import type { SandboxState } from './state.ts';

export interface TokenRequestLogEntry {
  at: string;
  grantType: string;
  clientId: string;
  upn?: string;
  status: number;
  error?: string;
  aadsts?: number;
}

export interface GraphRequestLogEntry {
  at: string;
  method: string;
  path: string;
  status: number;
  upn?: string;
  requestId: string;
  /** Set on a `$batch` sub-request: `{batch request-id}#{item id}`. */
  inBatch?: string;
}

export interface InjectedTokenError {
  status: number;
  error: string;
  aadsts?: number;
  suberror?: string;
  description?: string;
  claims?: string;
  /** Sent as the `Retry-After` header (seconds or an HTTP date), as Entra does with 429/503. */
  retryAfter?: string;
}

export interface PendingInjection {
  target: string; // upn or '*'
  error: InjectedTokenError;
  remaining: number;
}

/** Shared by the Entra, Graph and admin parts of one running sandbox. */
export interface SandboxContext {
  state: SandboxState;
  signing: SigningMaterial;
  now: () => number;
  accessTokenLifetimeSec: number;
  /** https://127.0.0.1:port, filled in once listening. */
  origin: string;
  /** Where a person's browser is sent (authorize, device code page): http://127.0.0.1:signInPort on loopback. */
  signInOrigin: string;
  tokenLog: TokenRequestLogEntry[];
  graphLog: GraphRequestLogEntry[];
  injections: PendingInjection[];
  /**
   * Network round trip of every HTTP request a client sends, a `$batch` counting once: batching saves
   * round trips [json-batching]. A plain request holds its mailbox slot meanwhile.
   */
  latencyMs: number;
  /** Service time of each `$batch` sub-request, during which it holds a mailbox slot (0: only real work). */
  subRequestMs: number;
  /** In-flight Graph requests per mailbox (throttling). */
  inFlight: Map<string, number>;
  maxConcurrentPerMailbox: number;
  /** Injected Graph faults (429 storms, 503, resets, malformed JSON, latency). */
  faults: FaultInjector;
}

export const LOG_LIMIT = 5000;

export function pushLog<T>(list: T[], entry: T): void {
  list.push(entry);
  if (list.length > LOG_LIMIT) list.splice(0, list.length - LOG_LIMIT);
}
