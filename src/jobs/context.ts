import type { Logger } from '../config/logger.ts';
import type { GraphClient } from '../graph/client.ts';
import type { Mailbox } from '../graph/mailbox.ts';
import type { Store } from '../store/index.ts';

/** A store whose keys are private to one job. */
export interface JobStore {
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Several keys in one read, in the order asked. */
  getMany<T>(keys: string[]): Promise<(T | undefined)[]>;
  /** Several entries in one write (one transaction on SQLite). */
  setMany<T>(entries: { key: string; value: T; ttlMs?: number }[]): Promise<void>;
}

export interface ActionRecord {
  messageId: string;
  rule: string;
  action: string;
  value?: unknown;
  subject?: string;
  /**
   * 'done' after a real run, 'planned' in a dry run; with `error`: 'failed', 'skipped', or 'unsure' (a
   * once-only action whose answer was lost after it was sent: it may have happened, and is not repeated).
   */
  result: 'done' | 'planned' | 'failed' | 'skipped' | 'unsure';
  error?: string;
  /** In a dry run of inbox rules: why the rule matched ("fromDomain news.example.com matched sender …"). */
  because?: string;
}

/** What every job receives. Jobs never import clients: all I/O goes through this. */
export interface JobContext {
  job: string;
  runId: string;
  mailbox: Mailbox;
  graph: GraphClient;
  store: JobStore;
  log: Logger;
  dryRun: boolean;
  /** Aborts the run now (in-flight requests too). */
  signal: AbortSignal;
  /** Asks the run to stop at its next safe point: inbox-rules finishes the page it is on (graceful shutdown). */
  stop: AbortSignal;
  /** The run's start: rules compare `olderThanDays` with it. */
  runStart: Date;
  /** Plain fetch for webhooks: never carries the Graph token. */
  fetch: typeof fetch;
  /** Called by long jobs after each unit of work (a delta page), e.g. to draw progress on a terminal. */
  onProgress?: (report: JobContext['report']) => void;
  /** Jobs report what they examined and did here. */
  report: { examined: number; actions: ActionRecord[] };
  /** Writes the actions reported so far to the audit log (the runner also does at the end of the run). */
  checkpoint(): Promise<void>;
}

export function jobStore(store: Store, job: string): JobStore {
  const prefix = `job:${job}:`;
  return {
    get: (key) => store.get(prefix + key),
    set: (key, value, ttlMs) => store.set(prefix + key, value, ttlMs),
    delete: (key) => store.delete(prefix + key),
    getMany: (keys) => store.getMany(keys.map((k) => prefix + k)),
    setMany: (entries) => store.setMany(entries.map((e) => ({ ...e, key: prefix + e.key }))),
  };
}
