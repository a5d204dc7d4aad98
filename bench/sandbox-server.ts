/** The sandbox in its own process, so the benchmark measures the agent's memory and not the emulator's. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startSandbox } from '../src/sandbox/index.ts';

const sb = await startSandbox({ dataDir: mkdtempSync(path.join(tmpdir(), 'ma-bench-sb-')), port: 0, persist: false });
process.stdout.write(`${JSON.stringify({ url: sb.url, caPem: sb.caPem, tenantId: sb.tenantId, client: sb.confidentialClient })}\n`);
process.on('SIGTERM', () => void sb.close().then(() => process.exit(0)));
