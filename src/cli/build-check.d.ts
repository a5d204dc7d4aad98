/** The build's entry, relative to the package root: dist/src/cli/main.js. */
export const BUILD_ENTRY: string;
/** True when root/dist/src/cli/main.js exists and no .ts under root/src is newer than its .js; MAILBOX_AGENT_SOURCES=1 says no. */
export function buildIsCurrent(root: string, env?: Record<string, string | undefined>): boolean;
