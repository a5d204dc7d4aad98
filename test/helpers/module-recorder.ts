/**
 * A module loader hook, as a data: URL to `register()` from node:module (after tsx's), that writes every module a
 * process loads to stderr as `LOADED <url>`, leaving the command's own output as it is.
 * Example: `register(MODULE_RECORDER)` in a preload, then `loadedUrls(stderr)`.
 */
export const MODULE_RECORDER = `data:text/javascript,${encodeURIComponent(`
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  process.stderr.write('LOADED ' + r.url + '\\n');
  return r;
}`)}`;

/** The URLs MODULE_RECORDER wrote to `stderr`, in load order. */
export function loadedUrls(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice(7));
}
