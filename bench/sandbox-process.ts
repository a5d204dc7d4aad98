/** The bench's sandbox in its own process (bench/sandbox-server.ts), so no client's memory includes the emulator's. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { FetchLike } from '../src/config/transport.ts';
import { sandboxFetch, type SandboxInfo } from './common.ts';

const here = path.dirname(new URL(import.meta.url).pathname);

export async function startBenchSandbox(): Promise<{ sb: SandboxInfo; f: FetchLike; stop(): void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'sandbox-server.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
  const sb = JSON.parse(first) as SandboxInfo;
  return { sb, f: sandboxFetch(sb), stop: () => child.kill('SIGTERM') };
}
