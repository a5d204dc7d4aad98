import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';

/** PEM material the sandbox serves HTTPS with, plus the CA a client must trust. */
export interface TlsMaterial {
  caPem: string;
  caPath: string;
  certPem: string;
  keyPem: string;
}

/** The key the sandbox signs id and access tokens with, and its JWKS entry. */
export interface SigningMaterial {
  keyPem: string;
  publicKeyPem: string;
  certPem: string;
  kid: string;
}

const DAY_MS = 24 * 3600 * 1000;

function newRsaKeyPem(): { privatePem: string; publicPem: string } {
  // node's generator is much faster than forge's pure-JS one.
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function serialNumber(): string {
  // positive, 16 bytes
  return '01' + randomBytes(15).toString('hex');
}

function writeSecret(path: string, pem: string): void {
  writeFileSync(path, pem, { mode: 0o600 });
  chmodSync(path, 0o600);
}

function isUsable(certPem: string, now: number, issuerPem?: string): boolean {
  try {
    const cert = forge.pki.certificateFromPem(certPem);
    if (cert.validity.notAfter.getTime() < now + DAY_MS) return false;
    if (cert.validity.notBefore.getTime() > now + 60_000) return false;
    if (issuerPem) {
      const issuer = forge.pki.certificateFromPem(issuerPem);
      if (!issuer.verify(cert)) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** A fresh RSA key and a certificate for it, valid from a day ago for `days` days; subject and extensions are the caller's. */
function newCertificate(now: number, days: number): { cert: forge.pki.Certificate; privatePem: string } {
  const { privatePem, publicPem } = newRsaKeyPem();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(now - DAY_MS);
  cert.validity.notAfter = new Date(now + days * DAY_MS);
  return { cert, privatePem };
}

function createCa(now: number): { certPem: string; keyPem: string } {
  const { cert, privatePem } = newCertificate(now, 5 * 365);
  const attrs = [
    { name: 'commonName', value: 'mailbox-agent sandbox CA' },
    { name: 'organizationName', value: 'mailbox-agent sandbox (not for production)' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true, pathLenConstraint: 0 },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privatePem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: privatePem };
}

function createServerCert(now: number, caCertPem: string, caKeyPem: string): { certPem: string; keyPem: string } {
  const caCert = forge.pki.certificateFromPem(caCertPem);
  // Stay below the 398-day limit browsers enforce for leaf certificates.
  const { cert, privatePem } = newCertificate(now, 397);
  cert.setSubject([{ name: 'commonName', value: 'localhost' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        { type: 7, ip: '127.0.0.1' },
        { type: 7, ip: '::1' },
      ],
    },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(caKeyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: privatePem };
}

/**
 * Loads the sandbox CA and server certificate from `dataDir`, creating (or
 * renewing) them when missing, unreadable or close to expiry.
 * Files: ca.pem, ca-key.pem, server.pem, server-key.pem (keys mode 0600).
 */
export function ensureTlsMaterial(dataDir: string, now: number = Date.now()): TlsMaterial {
  mkdirSync(dataDir, { recursive: true });
  const caPath = join(dataDir, 'ca.pem');
  const caKeyPath = join(dataDir, 'ca-key.pem');
  const certPath = join(dataDir, 'server.pem');
  const keyPath = join(dataDir, 'server-key.pem');

  let caPem = existsSync(caPath) ? readFileSync(caPath, 'utf8') : '';
  let caKeyPem = existsSync(caKeyPath) ? readFileSync(caKeyPath, 'utf8') : '';
  let caRenewed = false;
  if (!caPem || !caKeyPem || !isUsable(caPem, now)) {
    const ca = createCa(now);
    caPem = ca.certPem;
    caKeyPem = ca.keyPem;
    writeSecret(caKeyPath, caKeyPem);
    writeFileSync(caPath, caPem);
    caRenewed = true;
  }

  let certPem = existsSync(certPath) ? readFileSync(certPath, 'utf8') : '';
  let keyPem = existsSync(keyPath) ? readFileSync(keyPath, 'utf8') : '';
  if (caRenewed || !certPem || !keyPem || !isUsable(certPem, now, caPem)) {
    const server = createServerCert(now, caPem, caKeyPem);
    certPem = server.certPem;
    keyPem = server.keyPem;
    writeSecret(keyPath, keyPem);
    writeFileSync(certPath, certPem);
  }
  return { caPem, caPath, certPem, keyPem };
}

function base64url(buf: Buffer): string {
  return buf.toString('base64url');
}

/**
 * Loads or creates the token signing key and its self-signed certificate
 * (Entra publishes an `x5c` chain and uses the SHA-1 thumbprint `x5t` as `kid`).
 */
export function ensureSigningMaterial(dataDir: string, now: number = Date.now()): SigningMaterial {
  mkdirSync(dataDir, { recursive: true });
  const keyPath = join(dataDir, 'signing-key.pem');
  const certPath = join(dataDir, 'signing-cert.pem');
  let keyPem = existsSync(keyPath) ? readFileSync(keyPath, 'utf8') : '';
  let certPem = existsSync(certPath) ? readFileSync(certPath, 'utf8') : '';
  if (!keyPem || !certPem || !isUsable(certPem, now)) {
    const { cert, privatePem } = newCertificate(now, 5 * 365);
    const attrs = [{ name: 'commonName', value: 'accounts.sandbox.test' }];
    cert.setSubject(attrs);
    cert.setIssuer(attrs);
    cert.sign(forge.pki.privateKeyFromPem(privatePem), forge.md.sha256.create());
    keyPem = privatePem;
    certPem = forge.pki.certificateToPem(cert);
    writeSecret(keyPath, keyPem);
    writeFileSync(certPath, certPem);
  }
  const cert = forge.pki.certificateFromPem(certPem);
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  const kid = base64url(createHash('sha1').update(der).digest());
  const publicKeyPem = forge.pki.publicKeyToPem(cert.publicKey);
  return { keyPem, publicKeyPem, certPem, kid };
}

/** Base64 DER of a PEM certificate (the `x5c` form). */
export function certificateDerBase64(certPem: string): string {
  return certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
}
