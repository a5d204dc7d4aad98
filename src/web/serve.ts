import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../config/logger.ts';

export interface Serving {
  server: Server;
  /**
   * Stops answering at once: the listener closes, idle keep-alive connections are closed, a request that still
   * arrives on an open connection gets 503 with `Connection: close`, and a connection is closed as soon as its
   * last response is sent. Resolves when every connection has ended.
   */
  close(): Promise<void>;
  /** Last resort after the grace period: drops every connection, busy or not. */
  closeAll(): void;
}

/**
 * Listens with `app` and owns the shutdown of the HTTP side. Node's `server.close()` alone leaves a connection
 * that was busy when it was called open for keep-alive, so a request on it (a sign-in callback) would still be
 * served in full while the agent shuts down.
 * Example: `const web = await serve(createApp(deps), { port: 3000, host: '127.0.0.1', log }); … await web.close()`.
 */
export async function serve(app: RequestListener, options: { port: number; host: string; log: Logger }): Promise<Serving> {
  let closing = false;
  const server = createServer((req, res) => {
    if (closing) return refuse(req, res, options.log);
    // A response that ends during shutdown leaves its connection idle: close it now, not after the keep-alive timeout.
    res.once('finish', () => {
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
    app(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closed: Promise<void> | undefined;
  return {
    server,
    close() {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      return closed;
    },
    closeAll() {
      server.closeAllConnections();
    },
  };
}

/** 503 + `Connection: close`: the client retries elsewhere or after the restart; nothing of the request is acted on. */
function refuse(req: IncomingMessage, res: ServerResponse, log: Logger): void {
  // The path only: a query may hold an authorization code.
  const pathOnly = (req.url ?? '/').split('?')[0];
  log.info({ method: req.method, path: pathOnly }, 'refused a request: shutting down');
  const message = 'The agent is shutting down.';
  const remedy = 'Try again once it has restarted.';
  const json = pathOnly!.startsWith('/api/') || /\bjson\b/.test(req.headers.accept ?? '');
  const body = json ? JSON.stringify({ error: { code: 'SHUTTING_DOWN', message, remedy } }) : `${message} ${remedy}\n`;
  res.writeHead(503, {
    Connection: 'close',
    'Retry-After': '30',
    'Cache-Control': 'no-store',
    'Content-Type': json ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
  req.resume();
}
