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
  tokenLog: TokenRequestLogEntry[];
  graphLog: GraphRequestLogEntry[];
  injections: PendingInjection[];
  latencyMs: number;
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
