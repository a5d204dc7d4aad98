import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

export type JwtPayload = Record<string, unknown>;

/** Signs `payload` as a compact RS256 JWT with header `{typ, alg, kid}` (as Entra does, plus `x5t`). */
export function signJwt(payload: JwtPayload, keyPem: string, kid: string): string {
  const header = { typ: 'JWT', alg: 'RS256', x5t: kid, kid };
  const head = Buffer.from(JSON.stringify(header)).toString('base64url');
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const key: KeyObject = createPrivateKey(keyPem);
  const signature = sign('sha256', Buffer.from(`${head}.${body}`), key).toString('base64url');
  return `${head}.${body}.${signature}`;
}

export type JwtCheck =
  | { ok: true; payload: JwtPayload; header: JwtPayload }
  | { ok: false; reason: 'malformed' | 'signature' };

/** Verifies structure and RS256 signature; claim checks are the caller's. */
export function verifyJwt(token: string, publicKeyPem: string): JwtCheck {
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'malformed' };
  const [head, body, sig] = parts as [string, string, string];
  let header: JwtPayload;
  let payload: JwtPayload;
  try {
    header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as JwtPayload;
    payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as JwtPayload;
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (header.alg !== 'RS256') return { ok: false, reason: 'signature' };
  const good = verify('sha256', Buffer.from(`${head}.${body}`), createPublicKey(publicKeyPem), Buffer.from(sig, 'base64url'));
  return good ? { ok: true, payload, header } : { ok: false, reason: 'signature' };
}

/** Decodes a JWT payload without verifying it (tests, admin). */
export function decodeJwt(token: string): JwtPayload {
  const body = token.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as JwtPayload;
}
