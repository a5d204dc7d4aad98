// Whether the build in dist/ may run: plain JavaScript, so bin.js can ask before anything loads TypeScript.
// scripts/build.mjs writes the build and its stamp with the state this file reads, so both agree on what a source is.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** The build's entry, relative to the package root. */
export const BUILD_ENTRY = 'dist/src/cli/main.js';

/** What the build was made from, written last by scripts/build.mjs: { sources, packages }. */
export const BUILD_STAMP = 'dist/src/build-stamp.json';

/**
 * Every .ts under `root`/src but .d.ts files, each as its path relative to `root` (with /) mapped to
 * [mtimeMs, size]: ~130 stat calls, a few ms.
 */
export function sourceState(root) {
  const state = {};
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const { mtimeMs, size } = statSync(file);
        state[path.relative(root, file).split(path.sep).join('/')] = [mtimeMs, size];
      }
    }
  };
  walk(path.join(root, 'src'));
  return state;
}

/**
 * The installed version of each package folder in `dirs` (relative to `root`, e.g. node_modules/yaml), from npm's
 * record of node_modules (node_modules/.package-lock.json: one read instead of one per package, which took
 * ~20 ms for the ~90 packages the bundle inlines), else from each package.json. undefined where there is none.
 */
export function installedVersions(root, dirs) {
  let recorded;
  try {
    recorded = JSON.parse(readFileSync(path.join(root, 'node_modules/.package-lock.json'), 'utf8')).packages;
  } catch {
    recorded = undefined;
  }
  return Object.fromEntries(dirs.map((dir) => [dir, recorded ? recorded[dir]?.version : packageJsonVersion(path.join(root, dir))]));
}

function packageJsonVersion(dir) {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

/**
 * True when the build in `root`/dist may run instead of the sources. In a checkout (there are .ts sources): the
 * stamp must list exactly the .ts files under src with the same mtime and size each (an edited, added, removed or
 * restored source says no, whatever its mtime moved to) and the same version of every package the bundle inlines
 * (an `npm install` of another yaml says no until the build is made again). An installed package (a tarball from
 * `npm pack`) ships the build and no .ts sources: there only the entry counts, whatever mtimes the installer wrote.
 * MAILBOX_AGENT_SOURCES=1 in `env` says no, to run the sources through tsx.
 */
export function buildIsCurrent(root, env = process.env) {
  if (env.MAILBOX_AGENT_SOURCES === '1') return false;
  try {
    if (!statSync(path.join(root, BUILD_ENTRY), { throwIfNoEntry: false })) return false;
    const sources = Object.entries(sourceState(root));
    if (sources.length === 0) return true;
    const stamp = JSON.parse(readFileSync(path.join(root, BUILD_STAMP), 'utf8'));
    if (Object.keys(stamp.sources).length !== sources.length) return false;
    for (const [file, [mtimeMs, size]] of sources) {
      const built = stamp.sources[file];
      if (!built || built[0] !== mtimeMs || built[1] !== size) return false;
    }
    const installed = installedVersions(root, Object.keys(stamp.packages));
    return Object.entries(stamp.packages).every(([dir, version]) => installed[dir] === version);
  } catch {
    return false;
  }
}
