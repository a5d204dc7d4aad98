import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { REPO, type Harness } from '../helpers/harness.ts';

const CHILD = path.join(REPO, 'test/integration/token-child.ts');

/** A token-child process with a line reader: `next(match)` resolves with the first later line that matches. */
export interface ChildHandle {
  proc: ChildProcess;
  lines: string[];
  next(match: RegExp, timeoutMs?: number): Promise<string>;
  send(line: string): void;
  kill(): Promise<void>;
}

/**
 * Starts a token-child sharing the harness's store (`h.env.STORE_URL`: SQLite, Redis or PostgreSQL; `extraEnv` may
 * name another) and its token key (`DATA_DIR`).
 */
export function spawnTokenChild(h: Harness, extraEnv: Record<string, string>): ChildHandle {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '',
      STORE_URL: h.env.STORE_URL!, DATA_DIR: h.dir, SANDBOX_URL: h.sandbox.url, SANDBOX_CA: h.sandbox.caPath, CLIENT_ID: h.sandbox.clientId,
      ...extraEnv,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let cursor = 0;
  const waiters: { match: RegExp; resolve: (l: string) => void }[] = [];
  const deliver = () => {
    for (const w of [...waiters]) {
      const i = lines.findIndex((l, idx) => idx >= cursor && w.match.test(l));
      if (i >= 0) {
        cursor = i + 1;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(lines[i]!);
      }
    }
  };
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    lines.push(l);
    deliver();
  });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    proc,
    lines,
    next(match, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child: no line matching ${match} within ${timeoutMs} ms; got:\n${lines.slice(-10).join('\n')}\n${stderr.slice(-2000)}`)), timeoutMs);
        waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
        deliver();
      });
    },
    send(line) {
      proc.stdin!.write(`${line}\n`);
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Sends "go" to every child at once, `rounds` times, waiting for every answer each time; returns the answers
 * ("ok refreshed", "ok reused", "err <message>"). `stopOnError` ends it at the first failing round.
 */
export async function raceChildren(children: ChildHandle[], rounds: number, stopOnError = false): Promise<string[]> {
  const outcomes: string[] = [];
  for (let i = 0; i < rounds; i++) {
    const answers = children.map((c) => c.next(/^(ok|err) /));
    for (const c of children) c.send('go');
    outcomes.push(...(await Promise.all(answers)));
    if (stopOnError && outcomes.some((o) => o.startsWith('err'))) break;
  }
  return outcomes;
}
