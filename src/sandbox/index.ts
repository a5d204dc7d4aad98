import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Server as NetServer } from 'node:net';
import path from 'node:path';
import express from 'express';
import { createAdmin, createAdminRouter, type SandboxAdmin } from './admin.ts';
import { ensureSigningMaterial, ensureTlsMaterial } from './certificates.ts';
import type { SandboxContext } from './context.ts';
import {
  SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_CONFIDENTIAL_CLIENT_ID, SANDBOX_TENANT_DOMAIN, SANDBOX_TENANT_ID, SANDBOX_USERS,
} from './directory.ts';
import { createEntraRouter } from './entra.ts';
import { createGraphRouter } from './graph.ts';
import { configureBudget, type BudgetSettings } from './budget.ts';
import { createUploadRouter } from './drive.ts';
import { FaultInjector } from './faults.ts';
import { SandboxState } from './state.ts';

export { SANDBOX_CLIENT_ID, SANDBOX_CONFIDENTIAL_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_TENANT_ID } from './directory.ts';
export type { SandboxAdmin, AdminMessage, AdminFolder, DeliverMessageInput } from './admin.ts';
export type { AdminContact, AdminMessageDetail, ContactInput, DeliveryExtras } from './admin-extensions.ts';
export type { BudgetSettings, BudgetUsage } from './budget.ts';
export type { AdminDriveFile } from './drive.ts';
export type { InjectedTokenError, TokenRequestLogEntry, GraphRequestLogEntry } from './context.ts';
export type { FaultSpec, FaultKind } from './faults.ts';
export { generateMailbox } from './mailbox-generator.ts';

export interface SandboxOptions {
  /** e.g. 'data/sandbox': CA, server cert, signing key and state file live here (created if missing). */
  dataDir: string;
  /** Default 0 = ephemeral; `npm start` uses 3100. */
  port?: number;
  /**
   * Port of the sign-in listener (plain HTTP on 127.0.0.1, the pages a person's browser opens). Default: the
   * one used last time (dataDir/sign-in.json), else `port + 1`, else ephemeral; a default that is taken falls
   * back to the next. Only used when `host` is loopback; elsewhere the pages stay on the HTTPS origin.
   */
  signInPort?: number;
  /** Ports the default sign-in port must leave free, e.g. the agent's own PORT when it is SANDBOX_PORT + 1. */
  avoidPorts?: number[];
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default true: state saved to dataDir/state.json and reloaded on start. */
  persist?: boolean;
  /** Default 3600 (Entra: a random 60-90 min). */
  accessTokenLifetimeSec?: number;
  /** Clock in ms for token expiry etc.; default Date.now (plus any admin clock offset). */
  now?: () => number;
  /** Deterministic mailbox generation seed. */
  seed?: number;
  /** Outlook's request budget per app and mailbox; default the real 10,000 per 600,000 ms (budget.ts). */
  budget?: Partial<BudgetSettings>;
}

export interface Sandbox {
  /** https://127.0.0.1:<port>: the authority host and the Graph URL (Graph under /v1.0). */
  url: string;
  /**
   * http://127.0.0.1:<signInPort>: the pages a person's browser opens (discovery's authorization_endpoint,
   * the device code's verification_uri), so no browser shows a certificate warning. Same as `url` when the
   * sandbox listens on a non-loopback host.
   */
  signInUrl: string;
  authorityHost: string;
  graphUrl: string;
  /** PEM of the CA to trust for this origin only. */
  caPem: string;
  caPath: string;
  tenantId: string;
  tenantDomain: string;
  /** Public client "mailbox-agent (sandbox)". */
  clientId: string;
  /** A confidential app registration (client credentials, secret). */
  confidentialClient: { clientId: string; clientSecret: string };
  users: { upn: string; oid: string; displayName: string; password: string }[];
  admin: SandboxAdmin;
  close(): Promise<void>;
}

const DEFAULT_SEED = 20260412;

/**
 * Starts the offline Entra ID + Graph emulator: HTTPS for discovery, tokens and Graph, plus plain HTTP on
 * loopback for the sign-in pages a browser opens (docs/microsoft-notes.md, "The sandbox's sign-in pages").
 *
 * @example
 * const sb = await startSandbox({ dataDir: 'data/sandbox', port: 3100 });
 * // MS_AUTHORITY_HOST=sb.authorityHost MS_GRAPH_URL=sb.graphUrl MS_TENANT=sb.tenantId MS_CLIENT_ID=sb.clientId
 */
export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const clock = { offsetMs: 0 };
  const now = opts.now ?? (() => Date.now() + clock.offsetMs);
  const tls = ensureTlsMaterial(opts.dataDir, now());
  const signing = ensureSigningMaterial(opts.dataDir, now());
  const state = new SandboxState({ dataDir: opts.dataDir, persist: opts.persist ?? true, seed: opts.seed ?? DEFAULT_SEED, now });
  const ctx: SandboxContext = {
    state, signing, now, accessTokenLifetimeSec: opts.accessTokenLifetimeSec ?? 3600, origin: '', signInOrigin: '',
    tokenLog: [], graphLog: [], injections: [], latencyMs: 0, subRequestMs: 0, inFlight: new Map(), maxConcurrentPerMailbox: 4,
    faults: new FaultInjector(),
  };
  configureBudget(ctx, opts.budget);
  const admin = createAdmin(ctx, clock);

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const info = () => ({
    url: ctx.origin, signInUrl: ctx.signInOrigin, tenantId: SANDBOX_TENANT_ID, tenantDomain: SANDBOX_TENANT_DOMAIN, clientId: SANDBOX_CLIENT_ID,
    confidentialClientId: SANDBOX_CONFIDENTIAL_CLIENT_ID, caPath: tls.caPath,
    users: SANDBOX_USERS.map((u) => ({ upn: u.upn, oid: u.oid, displayName: u.displayName, password: u.password })),
  });
  app.use('/_sandbox', createAdminRouter(admin, info));
  const entra = createEntraRouter(ctx);
  app.use('/_upload', createUploadRouter(ctx)); // upload sessions' uploadUrl (drive.ts)
  app.use('/v1.0', createGraphRouter(ctx));
  app.use(entra.api, entra.browser);
  app.get('/', (_req, res) => {
    res.type('text/plain').send(`mailbox-agent sandbox: Entra ID v2 at ${ctx.origin}/{tenant}/v2.0, sign-in pages at ${ctx.signInOrigin}, Graph at ${ctx.origin}/v1.0, control at ${ctx.origin}/_sandbox/info\n`);
  });
  app.use(notFound);

  const host = opts.host ?? '127.0.0.1';
  const server: Server = createServer({ key: tls.keyPem, cert: tls.certPem }, app);
  await listen(server, opts.port ?? 0, host);
  const port = (server.address() as AddressInfo).port;
  const urlHost = host === '0.0.0.0' || host === '127.0.0.1' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  ctx.origin = `https://${urlHost}:${port}`;

  // The sign-in pages: plain HTTP on loopback only, and nothing but those pages (no token endpoint, no Graph).
  const servers: NetServer[] = [server];
  ctx.signInOrigin = ctx.origin;
  if (LOOPBACK_OR_ANY.has(host)) {
    const pages = express();
    pages.disable('x-powered-by');
    pages.set('etag', false);
    pages.use(entra.browser);
    pages.use(notFound);
    const signIn = createHttpServer(pages);
    const signInPort = await listenSignIn(signIn, opts, port).catch((error: unknown) => {
      server.close();
      throw error;
    });
    servers.push(signIn);
    ctx.signInOrigin = `http://127.0.0.1:${signInPort}`;
  }

  let closed = false;
  return {
    url: ctx.origin,
    signInUrl: ctx.signInOrigin,
    authorityHost: ctx.origin,
    graphUrl: ctx.origin,
    caPem: tls.caPem,
    caPath: tls.caPath,
    tenantId: SANDBOX_TENANT_ID,
    tenantDomain: SANDBOX_TENANT_DOMAIN,
    clientId: SANDBOX_CLIENT_ID,
    confidentialClient: { clientId: SANDBOX_CONFIDENTIAL_CLIENT_ID, clientSecret: SANDBOX_CLIENT_SECRET },
    users: SANDBOX_USERS.map((u) => ({ upn: u.upn, oid: u.oid, displayName: u.displayName, password: u.password })),
    admin,
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => {
        s.close(() => resolve());
        (s as Server).closeAllConnections();
      })));
      state.save();
    },
  };
}

const LOOPBACK_OR_ANY = new Set(['127.0.0.1', 'localhost', '0.0.0.0', '::', '::1']);

function notFound(req: express.Request, res: express.Response): void {
  res.status(404).json({ error: 'not_found', error_description: `The sandbox has no route ${req.method} ${req.path}` });
}

function listen(server: NetServer, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * The sign-in listener's port, kept across restarts (dataDir/sign-in.json) so that an agent in another
 * process, which discovered the authorization endpoint once, keeps a working sign-in link. Returns the port.
 */
async function listenSignIn(server: NetServer, opts: SandboxOptions, httpsPort: number): Promise<number> {
  const file = path.join(opts.dataDir, 'sign-in.json');
  if (opts.signInPort !== undefined) {
    await listen(server, opts.signInPort, '127.0.0.1');
  } else {
    // Next to a fixed HTTPS port (3100 → 3101); with an ephemeral one, ephemeral too.
    const beside = opts.port && opts.port < 65535 ? opts.port + 1 : undefined;
    const avoid = new Set([httpsPort, ...(opts.avoidPorts ?? [])]);
    const candidates = [previousSignInPort(file), beside, 0].filter((p): p is number => p !== undefined && !avoid.has(p));
    for (const [i, candidate] of candidates.entries()) {
      try {
        await listen(server, candidate, '127.0.0.1');
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || i === candidates.length - 1) throw error;
      }
    }
  }
  const port = (server.address() as AddressInfo).port;
  if (opts.persist ?? true) writeFileSync(file, `${JSON.stringify({ port })}\n`);
  return port;
}

function previousSignInPort(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const port = (JSON.parse(readFileSync(file, 'utf8')) as { port?: unknown }).port;
    return Number.isInteger(port) && (port as number) > 0 && (port as number) <= 65535 ? port as number : undefined;
  } catch {
    return undefined; // a damaged file only loses the preference
  }
}
