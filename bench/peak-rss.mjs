// Preload for bench/cli-run.ts: `node --import bench/peak-rss.mjs src/cli/bin.js …` writes the process's
// peak RSS (KB) and how bin.js loaded the agent (compiled | tsx) to $MA_PEAK_RSS_FILE as the process exits.
import { writeFileSync } from 'node:fs';

process.on('exit', () => {
  const file = process.env.MA_PEAK_RSS_FILE;
  if (file) writeFileSync(file, `${process.resourceUsage().maxRSS} ${globalThis[Symbol.for('mailbox-agent.loaded')] ?? 'unknown'}`);
});
