import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadOrCreateTokenKey, memoryStore, openStore } from '../../src/store/index.ts';
import { checkGetSetMany } from '../helpers/store-contract.ts';
import { open, seal } from '../../src/store/crypto.ts';

test('seal/open round-trips and binds the ciphertext to its key name and to the key', () => {
  const key = randomBytes(32);
  const sealed = seal(key, 'refresh-token-value', 'auth:tokens');
  assert.equal(open(key, sealed, 'auth:tokens'), 'refresh-token-value');
  assert.throws(() => open(key, sealed, 'auth:other'), /cannot be decrypted/);
  assert.throws(() => open(randomBytes(32), sealed, 'auth:tokens'), (e: Error & { remedy?: string }) => /TOKEN_KEY/.test(e.remedy ?? ''));
  const tampered = { ...sealed, ct: Buffer.from(Buffer.from(sealed.ct, 'base64').map((b, i) => (i === 0 ? b ^ 1 : b))).toString('base64') };
  assert.throws(() => open(key, tampered, 'auth:tokens'));
});

test('the generated token key is 32 bytes, mode 0600, and stable', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-key-'));
  const a = loadOrCreateTokenKey(dir);
  const b = loadOrCreateTokenKey(dir);
  assert.equal(a.length, 32);
  assert.deepEqual(a, b);
  assert.equal(statSync(path.join(dir, 'token.key')).mode & 0o777, 0o600);
  const configured = randomBytes(32);
  assert.deepEqual(loadOrCreateTokenKey(dir, configured), configured);
});

test('sqlite store: secrets are unreadable on disk, values survive a reopen', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-store-'));
  const key = randomBytes(32);
  const url = `sqlite://${path.join(dir, 'agent.sqlite')}`;
  const store = await openStore(url, key);
  await store.setSecret('auth:tokens', { refreshToken: 'RT-super-secret-value' });
  await store.set('job:triage:delta', { link: 'https://graph/x' });
  await store.close();
  const raw = readFileSync(path.join(dir, 'agent.sqlite'));
  assert.ok(!raw.includes('RT-super-secret-value'), 'the refresh token is not on disk in clear');
  const again = await openStore(url, key);
  assert.deepEqual(await again.getSecret('auth:tokens'), { refreshToken: 'RT-super-secret-value' });
  assert.deepEqual(await again.get('job:triage:delta'), { link: 'https://graph/x' });
  await again.close();
});

test('an unknown STORE_URL scheme is refused with the fix', async () => {
  await assert.rejects(openStore('mongodb://x', randomBytes(32)), /does not know/);
  await assert.rejects(openStore('mongodb://x', randomBytes(32)), (e: Error & { remedy?: string }) => /redis:\/\/host:port/.test(e.remedy ?? ''));
});

test('getMany / setMany: sqlite (one statement) and memory stores', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ma-store-'));
  const sqlite = await openStore(`sqlite://${path.join(dir, 'agent.sqlite')}`, randomBytes(32));
  try {
    await checkGetSetMany(sqlite);
  } finally {
    await sqlite.close();
  }
  await checkGetSetMany(memoryStore(randomBytes(32)));
});
