import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Installed copies live outside the checkout: no node_modules above the prefix, so a dependency missing from
 * package.json (or only a devDependency) fails here as it would for a user instead of being found in the checkout's.
 */
const CACHE = path.join(tmpdir(), 'mailbox-agent-installed');

/** Installs of other content are removed once this old; a test run that started from one takes minutes. */
const KEEP_MS = 60 * 60 * 1000;

export interface InstalledPackage {
  /** `<prefix>/node_modules/.bin/mailbox-agent`: the symlink npm makes, what npx and a shell start. */
  bin: string;
  /** `<prefix>/node_modules/mailbox-agent`: the package as extracted from the tarball. */
  dir: string;
  prefix: string;
}

let installing: Promise<InstalledPackage> | undefined;

/**
 * This checkout as a user gets it: `npm pack` (the prepack script bundles dist/), then the tarball installed with
 * `npm install --omit=dev` into a prefix of its own. Done once per content of what is packed, shared by every test
 * process: the first one packs and installs under a lock, the others wait for it and reuse the result.
 * @example spawn((await installedPackage()).bin, ['--help'])
 */
export function installedPackage(): Promise<InstalledPackage> {
  return (installing ??= install());
}

async function install(): Promise<InstalledPackage> {
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { files?: string[]; dependencies?: Record<string, string> };
  const deps = hash([JSON.stringify(pkg.dependencies ?? {}), process.version, process.platform, process.arch]);
  const prefix = path.join(CACHE, contentKey(pkg.files ?? [], deps));
  const installed = { prefix, bin: path.join(prefix, 'node_modules/.bin/mailbox-agent'), dir: path.join(prefix, 'node_modules/mailbox-agent') };
  const ready = path.join(prefix, '.ready');
  if (existsSync(ready)) return installed;
  mkdirSync(CACHE, { recursive: true });
  const release = await lock(`${prefix}.lock`);
  try {
    if (existsSync(ready)) return installed;
    rmSync(prefix, { recursive: true, force: true });
    mkdirSync(path.join(prefix, 'pack'), { recursive: true });
    writeFileSync(path.join(prefix, '.deps'), deps);
    seedDependencies(prefix, deps);
    await npm(['pack', '--pack-destination', path.join(prefix, 'pack')], REPO);
    const tarball = readdirSync(path.join(prefix, 'pack')).find((f) => f.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack wrote no tarball into ${path.join(prefix, 'pack')}`);
    await npm(['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', '--prefix', prefix, `./pack/${tarball}`], prefix);
    if (!existsSync(installed.bin)) throw new Error(`npm install made no ${installed.bin}`);
    writeFileSync(ready, '');
  } finally {
    release();
  }
  pruneOthers(prefix);
  return installed;
}

/**
 * A hash of what the tarball is made of: package.json, the files it lists (dist/src as its input, src/), what builds
 * the bundle (scripts/build.mjs, tsconfig.json, and package-lock.json for the versions of the packages it inlines),
 * README.md, and the dependency key (native modules depend on the Node version).
 */
function contentKey(files: string[], deps: string): string {
  const inputs = new Set(['package.json', 'package-lock.json', 'README.md', 'tsconfig.json', 'scripts/build.mjs', ...files.map((f) => f.replace(/^dist\//, ''))]);
  const parts: string[] = [deps];
  const add = (rel: string) => {
    const abs = path.join(REPO, rel);
    const stat = statSync(abs, { throwIfNoEntry: false });
    if (!stat) return;
    if (stat.isDirectory()) {
      for (const name of readdirSync(abs).sort()) add(path.join(rel, name));
    } else {
      parts.push(rel, hash([readFileSync(abs)]));
    }
  };
  for (const rel of [...inputs].sort()) add(rel);
  return hash(parts).slice(0, 16);
}

function hash(parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const part of parts) h.update(part).update('\0');
  return h.digest('hex');
}

/**
 * Copies node_modules from an earlier install with the same dependencies (minus the package itself), so npm only
 * adds the new tarball instead of compiling SQLite's driver again (a minute or two).
 */
function seedDependencies(prefix: string, deps: string) {
  const earlier = finishedInstalls().find((i) => i.dir !== prefix && i.deps === deps)?.dir;
  if (!earlier) return;
  try {
    cpSync(path.join(earlier, 'node_modules'), path.join(prefix, 'node_modules'), { recursive: true, verbatimSymlinks: true });
  } catch {
    // removed meanwhile: install from scratch
    rmSync(path.join(prefix, 'node_modules'), { recursive: true, force: true });
    return;
  }
  // npm must see the package as missing: the hidden lockfile would otherwise vouch for the earlier tarball.
  rmSync(path.join(prefix, 'node_modules/mailbox-agent'), { recursive: true, force: true });
  rmSync(path.join(prefix, 'node_modules/.package-lock.json'), { force: true });
}

/** Finished installs with their dependency key, newest first. */
function finishedInstalls(): { dir: string; deps: string; at: number }[] {
  const finished = readdirSync(CACHE).flatMap((name) => {
    const dir = path.join(CACHE, name);
    try {
      return [{ dir, at: statSync(path.join(dir, '.ready')).mtimeMs, deps: readFileSync(path.join(dir, '.deps'), 'utf8') }];
    } catch {
      return []; // not finished, or removed meanwhile
    }
  });
  return finished.sort((a, b) => b.at - a.at);
}

/** Removes other installs (finished or abandoned by a failed pack) untouched for an hour and not being made now. */
function pruneOthers(keep: string) {
  const now = Date.now();
  for (const name of readdirSync(CACHE)) {
    const dir = path.join(CACHE, name);
    if (dir === keep || name.includes('.lock') || existsSync(`${dir}.lock`)) continue;
    const touched = statSync(path.join(dir, '.ready'), { throwIfNoEntry: false }) ?? statSync(dir, { throwIfNoEntry: false });
    if (touched && now - touched.mtimeMs > KEEP_MS) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A lock shared by processes: a directory holding the owner's pid, made complete then renamed into place (atomic),
 * so a waiter always finds a pid. A lock whose owner died is moved aside and taken.
 */
async function lock(dir: string): Promise<() => void> {
  const mine = `${dir}.${process.pid}`;
  for (;;) {
    mkdirSync(mine, { recursive: true });
    writeFileSync(path.join(mine, 'pid'), String(process.pid));
    try {
      renameSync(mine, dir);
      // Released by moving it aside first: Linux rename(2) replaces an EMPTY directory, so deleting the pid file
      // and then the directory in place would let a waiter's rename land in between (and rmdir fail ENOTEMPTY).
      return () => {
        const released = `${dir}.released.${process.pid}`;
        renameSync(dir, released);
        rmSync(released, { recursive: true, force: true });
      };
    } catch (error) {
      if (!['EEXIST', 'ENOTEMPTY'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
    }
    if (ownerIsGone(dir)) {
      const aside = `${dir}.stale.${process.pid}`;
      try {
        renameSync(dir, aside);
        rmSync(aside, { recursive: true, force: true });
      } catch {
        // another waiter moved it first
      }
      continue;
    }
    await sleep(250);
  }
}

function ownerIsGone(dir: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(path.join(dir, 'pid'), 'utf8').trim());
  } catch {
    return false; // released meanwhile: the next attempt takes it
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Runs npm without the variables `npm test` hands its scripts (npm_package_*, npm_lifecycle_*, the outer project's
 * local prefix), which would otherwise steer the inner npm to the checkout.
 */
function npm(args: string[], cwd: string): Promise<void> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_(package_|lifecycle_|command$|config_local_prefix$|config_call$|config_yes$)/i.test(key)));
  return new Promise((resolve, reject) => {
    const child = spawn('npm', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`npm ${args.join(' ')} (in ${cwd}) exited ${code}:\n${output}`))));
  });
}
