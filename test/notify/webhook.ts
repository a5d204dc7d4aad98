import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A webhook receiver on loopback that records each POST and answers with the status the test sets. */
export async function startWebhook() {
  const received: Record<string, unknown>[] = [];
  let status = 204;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (status < 300) received.push({ ...JSON.parse(body), _contentType: req.headers['content-type'], _path: req.url });
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/SECRET-PATH-123`;
  return {
    url,
    received,
    setStatus(s: number) {
      status = s;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
