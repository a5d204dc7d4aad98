import type { Request, Response } from 'express';
import type { SandboxContext } from './context.ts';
import type { SandboxUser } from './directory.ts';
import { GraphError } from './graph-error.ts';
import type { Mailbox } from './mailbox-store.ts';

/** What the Graph routes in their own files (src/sandbox/graph-extensions.ts) share. */

/** What a route needs of a request (src/sandbox/graph.ts's GraphCall has all of it). */
export interface ExtensionCall {
  req: Request;
  res: Response;
  target: SandboxUser;
  box: Mailbox;
  /** 'me' or `users/{id}` */
  base: string;
  immutable: boolean;
  nowIso: string;
  query: URLSearchParams;
  body: unknown;
}

/** An answer that is bytes, not JSON: `$value` of an attachment, the content of a drive file. */
export class RawBody {
  constructor(readonly bytes: Buffer, readonly contentType: string) {}
}

/** `@odata.context` of an answer about the target user. */
export function contextUrl(ctx: SandboxContext, call: ExtensionCall, suffix: string): string {
  return `${ctx.origin}/v1.0/$metadata#users('${encodeURIComponent(call.target.oid)}')/${suffix}`;
}

/** `$select` checked against a type's properties, with Graph's error for an unknown one. */
export function selectOf(raw: string | null, allowed: readonly string[], type: string): Set<string> | undefined {
  if (!raw) return undefined;
  const fields = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const f of fields) {
    if (!allowed.includes(f)) throw new GraphError(400, 'RequestBroker--ParseUri', `Could not find a property named '${f}' on type 'microsoft.graph.${type}'.`);
  }
  return new Set(fields);
}

/** Keeps `keep` (always returned) and the selected properties of `full`. */
export function project(full: Record<string, unknown>, select: Set<string> | undefined, keep: string[]): Record<string, unknown> {
  if (!select) return full;
  const out: Record<string, unknown> = {};
  for (const k of keep) if (k in full) out[k] = full[k];
  for (const k of select) out[k] = full[k];
  return out;
}

/** `Prefer: odata.maxpagesize=N`, if given. */
export function maxPageSize(req: Request): number | undefined {
  const header = ([] as string[]).concat(req.headers.prefer ?? []).join(',');
  const m = /odata\.maxpagesize\s*=\s*(\d+)/i.exec(header);
  return m ? Number(m[1]) : undefined;
}
