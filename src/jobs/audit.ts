import type { Store } from '../store/index.ts';
import type { ActionRecord } from './context.ts';

/** One action a job took (or tried), as kept in the store's audit log and shown by status and the dashboard. */
export interface AuditEntry {
  at: string;
  job: string;
  runId: string;
  rule: string;
  messageId: string;
  subject?: string;
  action: string;
  value?: unknown;
  /** 'unsure': a once-only action (forward, copy, webhook, digest) that may or may not have happened; never repeated. */
  result: 'done' | 'failed' | 'skipped' | 'unsure';
  error?: string;
}

/** Entries kept per job; older ones are dropped. */
export const AUDIT_LIMIT_PER_JOB = 500;

const key = (job: string) => `audit:${job}`;

/**
 * The audit log: per job a bounded list in the store, newest last. Per-job keys mean two different
 * jobs writing at once never lose each other's entries; one job never overlaps with itself (the job lock).
 * Example: `await audit.append('triage', 'a1b2', actions); await audit.recent({ limit: 20 })`.
 */
export class AuditLog {
  constructor(private readonly store: Store, private readonly jobs: () => string[], private readonly now: () => Date = () => new Date()) {}

  /** Records the real actions among `records` (dry-run 'planned' ones are not actions taken). */
  async append(job: string, runId: string, records: readonly ActionRecord[]): Promise<void> {
    const taken = records.filter((r) => r.result !== 'planned');
    if (taken.length === 0) return;
    const at = this.now().toISOString();
    const list = (await this.store.get<AuditEntry[]>(key(job))) ?? [];
    for (const r of taken) {
      list.push({
        at, job, runId, rule: r.rule, messageId: r.messageId, ...(r.subject !== undefined ? { subject: r.subject } : {}),
        action: r.action, ...(r.value !== undefined ? { value: r.value } : {}), result: r.result as AuditEntry['result'],
        ...(r.error ? { error: r.error } : {}),
      });
    }
    await this.store.set(key(job), list.length > AUDIT_LIMIT_PER_JOB ? list.slice(-AUDIT_LIMIT_PER_JOB) : list);
  }

  /** Newest first; one job's entries or every job's. */
  async recent(options: { job?: string; limit?: number } = {}): Promise<AuditEntry[]> {
    const limit = Math.max(0, Math.min(options.limit ?? 50, AUDIT_LIMIT_PER_JOB * 10));
    const names = options.job !== undefined ? [options.job] : this.jobs();
    const all: AuditEntry[] = [];
    for (const name of names) all.push(...((await this.store.get<AuditEntry[]>(key(name))) ?? []));
    // Stable: entries of one job keep their order; newest first overall. `at` is toISOString()'s, so plain string
    // order is time order (localeCompare would start ICU's collator: tens of ms in `status`, docs/BENCHMARKS.md).
    return all
      .map((entry, index) => ({ entry, index }))
      .sort((a, b) => (a.entry.at < b.entry.at ? 1 : a.entry.at > b.entry.at ? -1 : 0) || b.index - a.index)
      .slice(0, limit)
      .map(({ entry }) => entry);
  }
}
