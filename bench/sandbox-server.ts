/** The sandbox in its own process, so the benchmark measures the agent's memory and not the emulator's. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startSandbox } from '../src/sandbox/index.ts';

// Outlook's request budget (10,000 per 10 min) would throttle the 50,000-message rows, which measure other things:
// it is lifted here, and only the budget row (run.ts --budget) sets one.
const sb = await startSandbox({ dataDir: mkdtempSync(path.join(tmpdir(), 'ma-bench-sb-')), port: 0, persist: false, budget: { limit: 1_000_000_000 } });
process.stdout.write(`${JSON.stringify({ url: sb.url, caPem: sb.caPem, tenantId: sb.tenantId, client: sb.confidentialClient })}\n`);
process.on('SIGTERM', () => void sb.close().then(() => process.exit(0)));
