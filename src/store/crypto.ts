import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, chmodSync, statSync } from 'node:fs';
import path from 'node:path';
import { AgentError } from '../config/errors.ts';

/** An encrypted value as stored: AES-256-GCM, the store key bound in as associated data. */
export interface Sealed {
  v: 1;
  iv: string;
  tag: string;
  ct: string;
}

/**
 * Encrypts `plaintext` so that it only opens under the same key *and* the same store key (`aad`),
 * so a ciphertext copied to another key in the store does not decrypt.
 * Example: `open(key, seal(key, 'tok', 'token:abc'), 'token:abc') === 'tok'`.
 */
export function seal(key: Buffer, plaintext: string, aad: string): Sealed {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { v: 1, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), ct: ct.toString('base64') };
}

export function open(key: Buffer, sealed: Sealed, aad: string): string {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.ct, 'base64')), decipher.final()]).toString('utf8');
  } catch (cause) {
    throw new AgentError('KEY_INVALID', `The stored secret "${aad}" cannot be decrypted with the current token key.`, {
      remedy: 'Restore the TOKEN_KEY (or data/token.key) it was written with, or run `mailbox-agent signout` and sign in again.',
      cause,
    });
  }
}

export function isSealed(value: unknown): value is Sealed {
  return typeof value === 'object' && value !== null && (value as Sealed).v === 1 && typeof (value as Sealed).ct === 'string';
}

/**
 * The token key: TOKEN_KEY when configured, else `data/token.key`, created once with mode 0600.
 * Two processes starting together agree on one key: the file is created exclusively (`wx`).
 */
export function loadOrCreateTokenKey(dataDir: string, configured?: Buffer): Buffer {
  if (configured) return configured;
  const file = path.join(dataDir, 'token.key');
  mkdirSync(dataDir, { recursive: true });
  try {
    writeFileSync(file, randomBytes(32).toString('base64') + '\n', { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const mode = statSync(file).mode & 0o777;
  if (mode & 0o077) chmodSync(file, 0o600);
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) {
    throw new AgentError('KEY_INVALID', `${file} does not hold a base64 32-byte key.`, {
      remedy: `Restore the file from a backup, or set TOKEN_KEY. If the key is lost, delete ${file} and sign in again.`,
    });
  }
  return key;
}
