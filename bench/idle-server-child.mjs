// The idle server in simulated time, run by bench/idle-server.ts with plain `node` (no tsx) on the INSTALLED
// package's build: `start`'s own startServer (sandbox found on SANDBOX_PORT, web UI listening, scheduler started),
// then 24 hours of five-minute runs compressed: each simulated five minutes is one run of the job as the scheduler
// fires it (runner.run) and one GET /api/status as an open dashboard polls it. After each simulated hour it writes a
// line {hour, rssMb, heapUsedMb, heapAfterGcMb}; heapAfterGcMb is the live heap after a full GC (--expose-gc), so
// growth there is a leak and not GC pacing.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir, hoursArg] = process.argv.slice(2);
const hours = Number(hoursArg ?? 24);
const load = (rel) => import(pathToFileURL(path.join(dir, 'dist/src', rel)).href);
const { loadConfig } = await load('config/index.js');
const { createLogger } = await load('config/logger.js');
const { startServer } = await load('cli/server.js');

const config = loadConfig(process.env);
const { rt, stop } = await startServer(config, createLogger({ level: 'warn' }), { installSignalHandlers: false });
const mb = (bytes) => Math.round((bytes / 1048576) * 10) / 10;
/** Linux: RSS split into anonymous memory (heaps: V8's, malloc's) and mapped files (node, shared libraries, ICU). */
const rssSplit = () => {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssAnonMb: mb(kb('RssAnon') * 1024), rssFileMb: mb(kb('RssFile') * 1024) };
  } catch {
    return {};
  }
};
const status = () => fetch(`http://127.0.0.1:${config.port}/api/status`).then((r) => r.json());
for (let hour = 1; hour <= hours; hour++) {
  for (let tick = 0; tick < 12; tick++) {
    const result = await rt.runner.run('bench');
    if (!result.ok) throw new Error(`run failed: ${result.error}`);
    await status();
  }
  const before = process.memoryUsage();
  globalThis.gc();
  const after = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ hour, rssMb: mb(before.rss), heapUsedMb: mb(before.heapUsed), heapAfterGcMb: mb(after.heapUsed), rssAfterGcMb: mb(after.rss), heapTotalAfterGcMb: mb(after.heapTotal), externalMb: mb(after.external), ...rssSplit(), maxRssMb: mb(process.resourceUsage().maxRSS * 1024) })}\n`);
}
await stop();
process.exit(0);
