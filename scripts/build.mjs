#!/usr/bin/env node
// Builds dist/: the CLI as one esbuild bundle split into chunks per dynamic import, so a command loads a few files
// instead of ~160 modules (docs/BENCHMARKS.md). `npm ci`/`npm install` run it (the prepare script), `npm pack`
// ships its output (prepack). It does not type-check: `npm run typecheck` (part of `npm test`) does.
//
//   node scripts/build.mjs [--root <package root>] [--metafile <file>]
//
// --metafile writes esbuild's record of which input went into which output (to see what makes a chunk big).
//
// Output, every file at the same depth under dist/src (src/web/app.ts finds views/ three levels up from its file):
//   dist/src/cli/main.js       the entry bin.js loads (BUILD_ENTRY), exporting main()
//   dist/src/cli/server.js, dist/src/config/{index,logger}.js
//                              entries of their own for bench/idle-server-child.mjs (startServer, loadConfig,
//                              createLogger); they share their chunks with main.js, so one module state
//   dist/src/chunks/*.js       the code entries share, and what each dynamic import loads
//   dist/src/build-stamp.json  what it was made from (src/cli/build-check.js) and which packages each file holds; written with the rest in a folder of
//                              its own that replaces dist/ when complete, so a failed build leaves none
import { build } from 'esbuild';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BUILD_STAMP, installedVersions, sourceState } from '../src/cli/build-check.js';

const { values } = parseArgs({ options: { root: { type: 'string' }, metafile: { type: 'string' } } });
const root = path.resolve(values.root ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));

const ENTRIES = ['src/cli/main.ts', 'src/cli/server.ts', 'src/config/index.ts', 'src/config/logger.ts'];

/**
 * Loaded from node_modules at run time, not inlined: native code (sqlite3, under the keyv adapter and the lock),
 * keyv and its adapters and pg (loaded only for their STORE_URL; the adapters import keyv themselves, so one copy),
 * pino (its transports start worker threads from files next to its own, found through __dirname; inlined or not,
 * `status` took the same time), what is loaded by createRequire on first use (pino-pretty, windows-iana), the
 * sandbox's and certificate sign-in's big libraries (node-forge, msal-node: only `start` without a tenant,
 * `sandbox` and app-only sign-in load them), and tsx (custom `.ts` job modules register it). The rest (yaml,
 * node-cron, openid-client, express, undici, …) is inlined, each in the chunk of the commands that use it.
 */
const EXTERNAL = [
  'sqlite3', 'keyv', '@keyv/*', 'pg', 'pg-*', 'pino', 'pino-pretty', 'windows-iana', 'node-forge', '@azure/msal-node', 'tsx', 'tsx/*',
];

/**
 * `await import('undici')` of a CommonJS package inlined in a split bundle: esbuild makes it a chunk whose only
 * export is `default` (module.exports), so `const { Agent } = await import('undici')` got undefined, where Node
 * itself gives the named exports too. Such an import is sent through a small ES module that re-exports each
 * property of module.exports by name (the names read from the installed package as the build runs), as Node does.
 */
const namedExportsOfDynamicCjs = {
  name: 'named-exports-of-dynamic-cjs',
  setup(b) {
    const isExternal = (name) => EXTERNAL.some((pattern) => (pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern));
    b.onResolve({ filter: /^[^./]/ }, async ({ path: name, kind, resolveDir }) => {
      if (kind !== 'dynamic-import' || isExternal(name)) return undefined;
      const resolved = await b.resolve(name, { kind: 'import-statement', resolveDir });
      if (resolved.errors.length || !isCommonJs(resolved.path)) return undefined;
      const names = Object.keys(createRequire(resolved.path)(resolved.path)).filter((key) => key !== 'default' && /^[A-Za-z_$][\w$]*$/.test(key));
      return { path: name, namespace: 'cjs-named', pluginData: { names, resolveDir } };
    });
    b.onLoad({ filter: /.*/, namespace: 'cjs-named' }, ({ path: name, pluginData: { names, resolveDir } }) => ({
      contents: `import cjs from ${JSON.stringify(name)};\nexport default cjs;\nexport const { ${names.join(', ')} } = cjs;\n`,
      resolveDir,
      loader: 'js',
    }));
  },
};

/** Whether Node loads `file` as CommonJS: .cjs, or .js under a package.json without "type": "module". */
function isCommonJs(file) {
  if (file.endsWith('.cjs')) return true;
  if (!file.endsWith('.js')) return false;
  for (let dir = path.dirname(file); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    try {
      return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).type !== 'module';
    } catch (error) {
      if (error.code !== 'ENOENT') throw error;
    }
  }
  return true;
}

const sources = sourceState(root); // before the build reads them: an edit made meanwhile leaves the build stale
const tmp = path.join(root, `dist.building-${process.pid}`);
removeLeftovers();
try {
  const result = await build({
    absWorkingDir: root,
    entryPoints: ENTRIES,
    outbase: '.',
    outdir: tmp,
    chunkNames: 'src/chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: EXTERNAL,
    // Whitespace and syntax only, not identifiers: a stack trace still names the functions it went through (a
    // chunk's line:column alone would say little), with no --keep-names wrappers to run and no source map to load.
    // Measured on `status`: the same time as the full minify, 25% less CPU than no minify.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    // The CommonJS packages inlined (express and its dependencies) call require() for Node's own modules.
    banner: { js: "import{createRequire as __maCreateRequire}from'node:module';const require=__maCreateRequire(import.meta.url);" },
    plugins: [namedExportsOfDynamicCjs],
    metafile: true,
    logLevel: 'warning',
  });
  const misplaced = Object.keys(result.metafile.outputs).filter((file) => !/^src\/[^/]+\/[^/]+$/.test(path.relative(tmp, path.resolve(root, file)).split(path.sep).join('/')));
  if (misplaced.length) throw new Error(`scripts/build.mjs: every output must be at dist/src/<dir>/<file> (src/web/app.ts finds views/ three levels up), not ${misplaced.join(', ')}`);
  if (values.metafile) writeFileSync(values.metafile, JSON.stringify(result.metafile));
  mkdirSync(path.join(tmp, 'src'), { recursive: true });
  const stamp = { sources, packages: inlinedPackages(result.metafile), outputs: outputPackages(result.metafile) };
  writeFileSync(path.join(tmp, path.relative('dist', BUILD_STAMP)), `${JSON.stringify(stamp, null, 1)}\n`);
  replaceDist();
} catch (error) {
  rmSync(tmp, { recursive: true, force: true });
  throw error;
}

/** Folders a build that was killed left (dist.building-PID, dist.old-PID-N, their process gone), and this one's. */
function removeLeftovers() {
  for (const name of readdirSync(root)) {
    const pid = Number(/^dist\.(?:building|old)-(\d+)/.exec(name)?.[1]);
    if (pid && (pid === process.pid || !isRunning(pid))) rmSync(path.join(root, name), { recursive: true, force: true });
  }
}

function isRunning(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/**
 * Puts the new build in place of dist/. Two builds may finish together (test processes packing the checkout at
 * once): the one whose rename finds a dist/ there again moves that aside and tries again, so both succeed and
 * dist/ is always one whole build.
 */
function replaceDist() {
  const dist = path.join(root, 'dist');
  for (let attempt = 1; ; attempt++) {
    const aside = `${dist}.old-${process.pid}-${attempt}`;
    try {
      renameSync(dist, aside);
    } catch (error) {
      if (error.code !== 'ENOENT') throw error;
    }
    try {
      renameSync(tmp, dist);
      return;
    } catch (error) {
      if (!['ENOTEMPTY', 'EEXIST'].includes(error.code) || attempt === 20) throw error;
    } finally {
      rmSync(aside, { recursive: true, force: true });
    }
  }
}

/**
 * Each output file (as dist/…) with the packages whose code it holds: what a command loads, by package, when it
 * loads that file (test/cli/lazy-commands.test.ts asks it of the bundle as of the sources).
 */
function outputPackages(metafile) {
  return Object.fromEntries(Object.entries(metafile.outputs).map(([file, { inputs }]) => [
    path.join('dist', path.relative(tmp, path.resolve(root, file))).split(path.sep).join('/'),
    [...new Set(Object.keys(inputs).map((input) => /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(input)?.[1]).filter(Boolean))].sort(),
  ]));
}

/** Each package the bundle holds code of, as its folder under the root (nested copies too), with its version. */
function inlinedPackages(metafile) {
  const dirs = new Set(Object.keys(metafile.inputs).map((input) => /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1]).filter(Boolean));
  return installedVersions(root, [...dirs].sort());
}
