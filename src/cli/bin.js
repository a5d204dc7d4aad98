#!/usr/bin/env node
// The package's bin: loads the CLI and calls main() on the arguments. npx, npm link, npm install -g and
// node_modules/.bin all start it through a symlink named mailbox-agent, so nothing here depends on the path
// that started it. It loads the build in dist/ (an esbuild bundle, scripts/build.mjs: `npm ci`/`npm install` make
// it, the prepare script; a packed tarball ships it, the prepack script) when it was made from the sources as they
// are now (src/cli/build-check.js); otherwise the TypeScript sources through tsx, so an edited or freshly pulled
// source never runs stale code and there is no build step to forget. The bundle loads a few files per command
// instead of ~160 modules: less than half the CPU and ~10 MB less memory for `status` (docs/BENCHMARKS.md).
// MAILBOX_AGENT_SOURCES=1 forces tsx.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BUILD_ENTRY, buildIsCurrent } from './build-check.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LOADED = Symbol.for('mailbox-agent.loaded');

/** main() of the build or of the sources, or undefined when the package has neither. */
async function loadMain() {
  if (buildIsCurrent(root)) {
    globalThis[LOADED] = 'compiled';
    return (await import(pathToFileURL(path.join(root, BUILD_ENTRY)).href)).main;
  }
  if (!existsSync(path.join(root, 'src/cli/main.ts'))) return undefined;
  const { register } = await import('tsx/esm/api');
  register();
  globalThis[LOADED] = 'tsx';
  return (await import('./main.ts')).main;
}

const main = await loadMain();
if (main) {
  // Not awaited: `start` and `sandbox` never resolve, they run until a signal ends the process.
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
} else {
  console.error(`mailbox-agent: this installation has neither its build (${BUILD_ENTRY}) nor its sources (src/cli/main.ts) in ${root}. Fix: reinstall the package; a tarball made with npm pack holds the build unless it was packed with --ignore-scripts.`);
  process.exitCode = 1;
}
