#!/usr/bin/env node
// The package's bin. Runs the build in dist/ (`npm ci` and `npm install` make it: the prepare script) when
// every source file is older than its build; otherwise the TypeScript sources through tsx, so an edited or
// freshly pulled source never runs stale code and there is no build step to forget. The build starts in
// half the time and takes ~35 MB less memory (docs/BENCHMARKS.md). MAILBOX_AGENT_SOURCES=1 forces tsx.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildIsCurrent } from './build-check.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LOADED = Symbol.for('mailbox-agent.loaded');

if (buildIsCurrent(root)) {
  globalThis[LOADED] = 'compiled';
  await import(pathToFileURL(path.join(root, 'dist/src/cli/main.js')).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  globalThis[LOADED] = 'tsx';
  await import('./main.ts');
}
