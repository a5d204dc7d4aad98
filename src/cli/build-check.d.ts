/** True when root/dist/src has a .js at least as new as each .ts under root/src; MAILBOX_AGENT_SOURCES=1 says no. */
export function buildIsCurrent(root: string, env?: Record<string, string | undefined>): boolean;
