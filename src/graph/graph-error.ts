import { RemoteError } from '../config/errors.ts';

/** Graph refused or answered garbage. The raw body stays non-enumerable, and never holds a token. */
export class GraphError extends RemoteError {
  readonly statusCode: number;
  readonly requestId?: string;
  readonly method: string;
  readonly path: string;

  constructor(init: { status: number; code: string; message: string; requestId?: string; method: string; path: string; body?: unknown; cause?: unknown }) {
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
