import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfinementGuard } from '../../src/auth/confinement.ts';
import type { GraphPermission } from '../../src/auth/permissions.ts';
import { createLogger } from '../../src/config/logger.ts';
import { GraphError } from '../../src/graph/graph-error.ts';

/** The paths the guard's probe reads for jobs needing `permissions`; the canary is denied. */
async function probePaths(permissions: GraphPermission[]): Promise<string[]> {
  const paths: string[] = [];
  const probeGraph = {
    async get(path: string) {
      paths.push(path);
      if (path.includes('canary')) throw new GraphError({ status: 403, code: 'ErrorAccessDenied', message: 'Access to OData is disabled.', method: 'GET', path });
      return { status: 200, body: {}, headers: new Headers() };
    },
  };
  const memory = new Map<string, unknown>();
  const store = { get: async (k: string) => memory.get(k), set: async (k: string, v: unknown) => void memory.set(k, v), delete: async (k: string) => void memory.delete(k) };
  const guard = new ConfinementGuard({
    probeGraph: probeGraph as never, mailbox: 'agent@contoso.com', canary: 'canary@contoso.com', ttlMs: 3_600_000, allowUnconfined: false,
    clientId: 'app-1', permissions, store: store as never, log: createLogger({ level: 'silent' }),
  });
  const proof = await guard.prove();
  assert.equal(proof.state, 'confined', JSON.stringify(proof));
  return paths;
}

describe('app-only confinement probe for calendar jobs', () => {
  it('reads the calendar when the jobs need only calendar permissions, ReadWrite included (it read mail before, which a calendar-only app may not)', async () => {
    assert.deepEqual(await probePaths(['Calendars.ReadWrite', 'MailboxSettings.Read']), ['/users/agent%40contoso.com/calendar?$select=id', '/users/canary%40contoso.com/calendar?$select=id']);
    assert.deepEqual(await probePaths(['Calendars.Read']), ['/users/agent%40contoso.com/calendar?$select=id', '/users/canary%40contoso.com/calendar?$select=id']);
    assert.deepEqual(await probePaths(['Mail.Read', 'Calendars.ReadWrite']), ['/users/agent%40contoso.com/mailFolders/inbox?$select=id', '/users/canary%40contoso.com/mailFolders/inbox?$select=id']);
  });
});
