// Whether the build in dist/ may run: plain JavaScript, so bin.js can ask before anything loads TypeScript.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** The build's entry, relative to the package root. */
export const BUILD_ENTRY = 'dist/src/cli/main.js';

/**
 * True when `root`/dist/src/cli/main.js exists and every .ts under `root`/src has a .js in dist/src at least as new
 * (~70 files: a few ms of stat calls). The installed package (a tarball from `npm pack`) ships the build and no .ts
 * sources, so there only the entry counts, whatever mtimes the installer wrote. MAILBOX_AGENT_SOURCES=1 in `env`
 * says no, to run the sources through tsx.
 */
export function buildIsCurrent(root, env = process.env) {
  if (env.MAILBOX_AGENT_SOURCES === '1') return false;
  const check = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const source = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!check(source)) return false;
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const built = statSync(path.join(root, 'dist', path.relative(root, source)).replace(/\.ts$/, '.js'), { throwIfNoEntry: false });
        if (!built || built.mtimeMs < statSync(source).mtimeMs) return false;
      }
    }
    return true;
  };
  try {
    return statSync(path.join(root, BUILD_ENTRY), { throwIfNoEntry: false }) !== undefined && check(path.join(root, 'src'));
  } catch {
    return false;
  }
}
