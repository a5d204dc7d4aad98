/** The build's entry, relative to the package root: dist/src/cli/main.js. */
export const BUILD_ENTRY: string;
/** The build's record of what it was made from, relative to the package root: dist/src/build-stamp.json. */
export const BUILD_STAMP: string;
/** Every .ts (not .d.ts) under root/src, by its path relative to root (with /), as [mtimeMs, size]. */
export function sourceState(root: string): Record<string, [number, number]>;
/** The installed version of each package folder (relative to root, e.g. node_modules/zod); undefined where none is installed. */
export function installedVersions(root: string, dirs: string[]): Record<string, string | undefined>;
/**
 * True when root/dist/src/cli/main.js exists and, where root/src holds .ts sources (a checkout), the build's stamp
 * lists exactly those files with the same mtime and size, and the same versions of the packages it inlines;
 * MAILBOX_AGENT_SOURCES=1 says no.
 */
export function buildIsCurrent(root: string, env?: Record<string, string | undefined>): boolean;
