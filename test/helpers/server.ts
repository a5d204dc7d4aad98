import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer } from '../../src/cli/server.ts';
import { loadConfig } from '../../src/config/index.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { logCapture, REPO } from './harness.ts';
import { freePort } from './servers.ts';

export { freePort };

/**
 * The agent as `npm start` runs it (web UI + scheduler), on free ports, against a sandbox of the test's own.
 * `redirectUri: false` leaves MS_REDIRECT_URI out of the environment, as a person who only sets PORT does.
 */
export async function startAgentServer(extraEnv: Record<string, string> = {}, options: { redirectUri?: boolean } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-srv-'));
  const sandbox: Sandbox = await startSandbox({ dataDir: path.join(dir, 'sandbox'), port: 0 });
  const port = await freePort();
  const jobsPath = path.join(dir, 'agent.config.yaml');
  // The shipped jobs file, but triage fires once a year instead of every five minutes: a scheduled fire landing on a
  // test's own "Run now" made it JOB_BUSY (a browser test waited for a result that never came, at hh:15).
  writeFileSync(jobsPath, readFileSync(path.join(REPO, 'agent.config.yaml'), 'utf8').replace('schedule: "*/5 * * * *"', 'schedule: "0 0 1 1 *"'));
  const env = {
    DATA_DIR: dir,
    STORE_URL: `sqlite://${path.join(dir, 'agent.sqlite')}`,
    AGENT_CONFIG: jobsPath,
    SANDBOX_PORT: new URL(sandbox.url).port,
    PORT: String(port),
    ...(options.redirectUri === false ? {} : { MS_REDIRECT_URI: `http://localhost:${port}/auth/callback` }),
    ...extraEnv,
  };
  const config = loadConfig(env, { envFile: false, cwd: dir });
  const { lines, log } = logCapture();
  const server = await startServer(config, log, { installSignalHandlers: false });
  return {
    dir, sandbox, env, logs: lines, url: `http://127.0.0.1:${port}`, rt: server.rt,
    async close() {
      await server.stop();
      await sandbox.close();
    },
  };
}
