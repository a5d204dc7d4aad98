import { bytesOf, type GraphClient } from './client.ts';
import { GraphError } from './graph-error.ts';

/**
 * The signed-in person's OneDrive, enough to store files by path [docs/microsoft-notes.md, "Headers, attachments,
 * contacts, drive, reply, request budget"]:
 * - a file up to SIMPLE_UPLOAD_MAX_BYTES goes in one `PUT …/root:/{path}:/content`;
 * - a larger one (or one the simple upload refuses with 413) through an upload session: `POST
 *   …:/createUploadSession` → `uploadUrl`, then byte ranges PUT there with Content-Range (202 until the last,
 *   then 201/200). The uploadUrl is pre-authenticated, usually on another host: it goes through the plain
 *   transport, never with the bearer token.
 * Every upload uses conflictBehavior `fail`: a name that is taken is never overwritten (409 nameAlreadyExists).
 * Example: `await new Drive(graph, '/me').upload('/Receipts/2026/a.pdf', bytes, 'application/pdf')`.
 */
export const SIMPLE_UPLOAD_MAX_BYTES = 250 * 1024 * 1024;
/** Ranges must be multiples of 320 KiB (except the last) and under 60 MiB; 10 × 320 KiB = 3.125 MiB. */
export const UPLOAD_RANGE_BYTES = 10 * 320 * 1024;

export interface DriveFile {
  id: string;
  name: string;
  size: number;
}

/** `/Receipts/2026/a b.pdf` → `/Receipts/2026/a%20b.pdf` (each segment encoded; empty segments dropped). */
export function encodeDrivePath(path: string): string {
  return `/${path.split('/').filter(Boolean).map(encodeURIComponent).join('/')}`;
}

export function isNameTaken(error: unknown): boolean {
  return error instanceof GraphError && error.statusCode === 409;
}

export class Drive {
  constructor(
    private readonly graph: GraphClient,
    /** `/me` (delegated). */
    private readonly root: string,
    private readonly rangeBytes = UPLOAD_RANGE_BYTES,
  ) {}

  private item(path: string): string {
    return `${this.root}/drive/root:${encodeDrivePath(path)}:`;
  }

  /** The file at `path`, or undefined when there is none. */
  async file(path: string, signal?: AbortSignal): Promise<DriveFile | undefined> {
    try {
      return (await this.graph.get<DriveFile>(`${this.item(path)}?$select=id,name,size`, { signal })).body;
    } catch (error) {
      if (error instanceof GraphError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  /**
   * Uploads `bytes` as a new file at `path`; throws a 409 GraphError (isNameTaken) when the name is taken.
   * `onSession` hears the uploadUrl of an upload session before its first range, so a caller can cancel it
   * after a crash (`cancelSession`).
   */
  async upload(path: string, bytes: Buffer, contentType: string, options: { signal?: AbortSignal; onSession?: (uploadUrl: string) => Promise<void> } = {}): Promise<DriveFile> {
    if (bytes.length <= SIMPLE_UPLOAD_MAX_BYTES) {
      try {
        // Not repeated after a lost answer (idempotent: false): a repeat would meet our own file as a taken name.
        return (await this.graph.putBytes<DriveFile>(`${this.item(path)}/content?@microsoft.graph.conflictBehavior=fail`, bytes, contentType, { signal: options.signal, idempotent: false })).body;
      } catch (error) {
        // A smaller limit than the documented one (older documentation: 4 MB): the upload session takes any size.
        if (!(error instanceof GraphError && error.statusCode === 413)) throw error;
      }
    }
    return this.uploadInSession(path, bytes, options);
  }

  private async uploadInSession(path: string, bytes: Buffer, options: { signal?: AbortSignal; onSession?: (uploadUrl: string) => Promise<void> }): Promise<DriveFile> {
    const name = path.split('/').filter(Boolean).pop()!;
    const session = (await this.graph.post<{ uploadUrl?: string }>(`${this.item(path)}/createUploadSession`, { item: { '@microsoft.graph.conflictBehavior': 'fail', name } }, { signal: options.signal })).body;
    const uploadUrl = session?.uploadUrl;
    if (!uploadUrl) throw new GraphError({ status: 200, code: 'InvalidResponse', message: 'createUploadSession answered without an uploadUrl', method: 'POST', path: `${this.item(path)}/createUploadSession`, executed: true });
    await options.onSession?.(uploadUrl);
    try {
      for (let first = 0; ; ) {
        const last = Math.min(first + this.rangeBytes, bytes.length) - 1;
        const answer = await this.sendRange(uploadUrl, bytes.subarray(first, last + 1), `bytes ${first}-${last}/${bytes.length}`, options.signal);
        if (answer.status === 200 || answer.status === 201) return answer.body as DriveFile;
        // 202: the server says where to go on ("26-"); in order, so it is the byte after the last one sent.
        const next = Number(/^(\d+)-/.exec((answer.body as { nextExpectedRanges?: string[] }).nextExpectedRanges?.[0] ?? '')?.[1] ?? last + 1);
        if (!(next > first) || next >= bytes.length) throw uploadError(uploadUrl, 'PUT', answer.status, 'InvalidResponse', `the upload session expects byte ${next} next, after ${first}-${last} of ${bytes.length}`);
        first = next;
      }
    } catch (error) {
      // A failed session is of no further use (a 409 keeps it until it expires): cancel it, best effort.
      await this.cancelSession(uploadUrl);
      throw error;
    }
  }

  /** One byte range to the pre-authenticated uploadUrl: the plain transport, no Authorization header. */
  private async sendRange(uploadUrl: string, chunk: Buffer, range: string, signal?: AbortSignal): Promise<{ status: number; body: unknown }> {
    let response: Response;
    try {
      response = await this.graph.transport(uploadUrl, { method: 'PUT', headers: { 'content-range': range, 'content-type': 'application/octet-stream' }, body: bytesOf(chunk), signal, redirect: 'manual' });
    } catch (cause) {
      if (signal?.aborted) throw cause;
      throw uploadError(uploadUrl, 'PUT', 0, 'NetworkError', (cause as Error).message, cause);
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = {};
    }
    if (response.status >= 200 && response.status < 300) return { status: response.status, body };
    const err = (body as { error?: { code?: string; message?: string } }).error ?? {};
    throw uploadError(uploadUrl, 'PUT', response.status, err.code ?? `HTTP${response.status}`, `${err.message ?? 'no error message'} (range ${range})`, undefined, body);
  }

  /** Cancels an upload session (DELETE uploadUrl); a session already gone or unreachable is left to expire. */
  async cancelSession(uploadUrl: string): Promise<void> {
    try {
      const response = await this.graph.transport(uploadUrl, { method: 'DELETE', redirect: 'manual', signal: AbortSignal.timeout(30_000) });
      await response.body?.cancel();
    } catch {
      // Sessions expire on their own; nothing of the file exists until its last range.
    }
  }
}

/** The upload URL carries its authorization in its query: only its origin and path are shown. */
function uploadError(uploadUrl: string, method: string, status: number, code: string, message: string, cause?: unknown, body?: unknown): GraphError {
  const u = new URL(uploadUrl);
  return new GraphError({ status, code, message, method, path: `${u.origin}${u.pathname.replace(/\/[^/]{16,}$/, '/…')} (upload session)`, cause, body });
}
