// Preload for the bench's whole-process figures (bench/cli-run.ts, bench/cli-start.ts): given as
// NODE_OPTIONS=--import=bench/peak-rss.mjs, it writes the process's peak RSS (KB), how bin.js loaded the agent
// (compiled | tsx) and its CPU time (user + system, ms) to $MA_PEAK_RSS_FILE as the process exits.
import { writeFileSync } from 'node:fs';

process.on('exit', () => {
  const file = process.env.MA_PEAK_RSS_FILE;
  const usage = process.resourceUsage();
  if (file) writeFileSync(file, `${usage.maxRSS} ${globalThis[Symbol.for('mailbox-agent.loaded')] ?? 'unknown'} ${Math.round((usage.userCPUTime + usage.systemCPUTime) / 1000)}`);
});
