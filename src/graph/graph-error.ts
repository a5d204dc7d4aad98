import { RemoteError } from '../config/errors.ts';

/**
 * Graph refused, failed, or answered garbage (status 0: no answer at all). The raw body stays
 * non-enumerable, and never holds a token.
 */
export class GraphError extends RemoteError {
  readonly statusCode: number;
  readonly requestId?: string;
  readonly method: string;
  readonly path: string;
  /** Whether Graph may have carried the request out (retry-policy.ts `mayHaveRun`): a write with 'unknown' is never repeated blindly. */
  readonly executed: boolean | 'unknown';

  constructor(init: { status: number; code: string; message: string; requestId?: string; method: string; path: string; body?: unknown; cause?: unknown; executed?: boolean | 'unknown' }) {
    super('graph', 'GRAPH_ERROR', `Graph ${init.method} ${init.path} failed: ${init.status} ${init.code}: ${init.message}`, {
      remoteCode: init.code,
      details: init.body,
      cause: init.cause,
      status: 502,
      remedy: remedyFor(init.status, init.code),
    });
    this.name = 'GraphError';
    this.statusCode = init.status;
    this.requestId = init.requestId;
    this.method = init.method;
    this.path = init.path;
    this.executed = init.executed ?? (init.status === 0 || (init.status >= 500 && init.status !== 503) ? 'unknown' : init.status >= 400 ? false : true);
  }

  /**
   * Another try later may well succeed: throttled, Graph failing or busy, the network, an answer cut off or
   * not JSON, or a batched request not run because one before it failed (424). Such a failure is never a
   * reason to pass over the work: the page stays uncommitted and the next run does it again.
   */
  get transient(): boolean {
    const s = this.statusCode;
    return s === 0 || s === 429 || s === 424 || s >= 500 || this.remoteCode === 'InvalidResponse';
  }

  /** 410, or any 4xx whose code says the delta state is gone [MICROSOFT.md "Expired delta state"]. */
  get isSyncStateLost(): boolean {
    const code = (this.remoteCode ?? '').toLowerCase();
    return this.statusCode === 410 || (this.statusCode >= 400 && this.statusCode < 500 && (code === 'syncstatenotfound' || code === 'resyncrequired' || code === 'syncstateinvalid'));
  }
}

function remedyFor(status: number, code: string): string | undefined {
  if (status === 403) return 'The account or app lacks a permission for this call; run mailbox-agent doctor.';
  if (status === 404 && /folder/i.test(code)) return 'Check the folder name in the jobs file.';
  if (status === 429 || status >= 500) return 'Microsoft is busy or failing; the next scheduled run retries.';
  return undefined;
}
