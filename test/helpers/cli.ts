import { spawn } from 'node:child_process';
import path from 'node:path';
import type { FetchLike } from '../../src/config/transport.ts';
import { parseForm, REPO } from './harness.ts';
import { installedPackage } from './installed-package.ts';

/** The bin in the checkout; test/cli/bin.test.ts and the bench start it directly. */
export const BIN = path.join(REPO, 'src/cli/bin.js');

/**
 * Runs the binary as a user does: the `node_modules/.bin/mailbox-agent` symlink of the packed and installed package
 * (test/helpers/installed-package.ts), with only the given environment (plus PATH and HOME).
 */
export async function cli(args: string[], env: Record<string, string>, cwd: string, options: { input?: string; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn((await installedPackage()).bin, args, { cwd, env: userEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Starts `mailbox-agent signin --device` (installed, like cli()); `code` resolves once it prints the URL and code, `exit` when it ends. */
export function startDeviceSignin(env: Record<string, string>, cwd: string) {
  const child = installedPackage().then(({ bin }) => spawn(bin, ['signin', '--device'], { cwd, env: userEnv(env), stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  const code = child.then((c) => new Promise<{ url: string; userCode: string }>((resolve, reject) => {
    c.stderr.on('data', (d) => (stderr += d));
    c.stdout.on('data', (d) => {
      stdout += d;
      const url = /URL: +(\S+)/.exec(stdout)?.[1];
      const userCode = /code: +(\S+)/.exec(stdout)?.[1];
      if (url && userCode) resolve({ url, userCode });
    });
    c.on('close', () => reject(new Error(`exited before printing a code: ${stdout} ${stderr}`)));
  }));
  const exit = child.then((c) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => c.on('close', (status) => resolve({ code: status ?? -1, stdout, stderr }))));
  return { code, exit };
}

function userEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env };
}

/** What a person does on another device: open the URL, type the code, sign in (password "sandbox") or cancel. */
export async function onTheDevicePage(fetch: FetchLike, url: string, userCode: string, choice: { user: string } | 'cancel'): Promise<string> {
  const codePage = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ otc: userCode }).toString() });
  const form = parseForm(await codePage.text());
  if (choice === 'cancel') form.fields.action = 'cancel';
  else Object.assign(form.fields, { username: choice.user, password: 'sandbox' });
  const done = await fetch(new URL(form.action, url).href, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form.fields).toString() });
  return done.text();
}
