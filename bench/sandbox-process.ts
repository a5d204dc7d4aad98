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

/**
 * A bench file's `main` when it is run directly: its numeric `--flag` (or `fallback`), a sandbox of its own for
 * the run, and what `run` returns printed. Example: `await mainWithSandbox('--runs', 7, (sb, f, n) => …)`.
 */
export async function mainWithSandbox(flag: string, fallback: number, run: (sb: SandboxInfo, f: FetchLike, n: number) => Promise<string>): Promise<void> {
  const args = process.argv.slice(2);
  const i = args.indexOf(flag);
  const n = i >= 0 ? Number(args[i + 1]) : fallback;
  const { sb, f, stop } = await startBenchSandbox();
  try {
    console.log(await run(sb, f, n));
  } finally {
    stop();
  }
}
