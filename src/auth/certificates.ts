import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import forge from 'node-forge';
import { AgentError } from '../config/errors.ts';

/**
 * The app-only certificate credential: making one (`mailbox-agent cert create`), loading one for msal-node,
 * and the manifest `keyCredentials` entry. Facts: ../shared/MICROSOFT.md "Certificate credential"
 * [entra-docs certificate-credentials; msal-node Configuration.ts].
 */

/** Entra refuses certificate keys under 2048 bits [MICROSOFT.md "Certificate credential"]. */
export const MIN_RSA_BITS = 2048;
export const DEFAULT_RSA_BITS = 3072;
export const DEFAULT_CERT_DAYS = 365;
/** status and doctor warn this long before a credential expires. */
export const EXPIRY_WARNING_MS = 30 * 86_400_000;

export interface CertificateFacts {
  /** Hex, upper case: what the Entra portal shows. */
  thumbprintSha1: string;
  thumbprintSha256: string;
  /** base64url of the SHA-256 of the DER: the `x5t#S256` header of an assertion. */
  x5tS256: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  keyBits: number;
  /** Base64 DER (the manifest's `key`, one `x5c` element). */
  derBase64: string;
}

export interface LoadedCertificate extends CertificateFacts {
  certPem: string;
  /** PKCS#8 PEM, as msal-node wants it. */
  privateKeyPem: string;
}

export interface KeyCredential {
  customKeyIdentifier: string;
  keyId: string;
  type: 'AsymmetricX509Cert';
  usage: 'Verify';
  key: string;
  displayName: string;
  startDateTime: string;
  endDateTime: string;
}

/** Thumbprints, validity and key size of a PEM certificate. Example: `describeCertificate(readFileSync('cert.pem', 'utf8')).thumbprintSha256`. */
export function describeCertificate(certPem: string): CertificateFacts {
  const x509 = new X509Certificate(certPem);
  const der = x509.raw;
  const bits = x509.publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
  return {
    thumbprintSha1: createHash('sha1').update(der).digest('hex').toUpperCase(),
    thumbprintSha256: createHash('sha256').update(der).digest('hex').toUpperCase(),
    x5tS256: createHash('sha256').update(der).digest('base64url'),
    subject: x509.subject.replace(/\n/g, ', '),
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    keyBits: bits,
    derBase64: der.toString('base64'),
  };
}

/**
 * Reads MS_CLIENT_CERT and MS_CLIENT_KEY and checks them before msal-node sees them: the key must belong to
 * the certificate, be RSA of at least 2048 bits, and the certificate must not have expired.
 * Example: `const cert = loadCertificate('/etc/agent/cert.pem', '/etc/agent/key.pem')`.
 */
export function loadCertificate(certPath: string, keyPath: string, now = Date.now()): LoadedCertificate {
  const fail = (message: string, remedy: string, cause?: unknown) => new AgentError('AUTH_CONFIG', message, { remedy, cause });
  let certText: string;
  let keyText: string;
  try {
    certText = readFileSync(certPath, 'utf8');
    keyText = readFileSync(keyPath, 'utf8');
  } catch (error) {
    throw fail(`Cannot read the certificate credential: ${(error as Error).message}.`, 'Check MS_CLIENT_CERT and MS_CLIENT_KEY (mailbox-agent cert create makes a pair).', error);
  }
  const certPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(certText)?.[0];
  if (!certPem) throw fail(`${certPath} (MS_CLIENT_CERT) holds no PEM certificate.`, 'Point MS_CLIENT_CERT at the PEM file with "-----BEGIN CERTIFICATE-----".');
  let facts: CertificateFacts;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
    facts = describeCertificate(certPem);
  } catch (error) {
    throw fail(`${certPath} (MS_CLIENT_CERT) is not a readable certificate: ${(error as Error).message}.`, 'Make a new pair with mailbox-agent cert create.', error);
  }
  let privateKeyPem: string;
  try {
    const key = createPrivateKey(keyText);
    if (key.asymmetricKeyType !== 'rsa') throw new Error(`it is a ${key.asymmetricKeyType} key, Entra certificate credentials here are RSA`);
    privateKeyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
    if (!x509.checkPrivateKey(key)) {
      throw fail(`${keyPath} (MS_CLIENT_KEY) is not the private key of ${certPath} (MS_CLIENT_CERT).`, 'Use the key file made together with the certificate.');
    }
  } catch (error) {
    if (error instanceof AgentError) throw error;
    throw fail(`${keyPath} (MS_CLIENT_KEY) is not a usable private key: ${(error as Error).message}.`, 'Point MS_CLIENT_KEY at the unencrypted PEM key made with the certificate.', error);
  }
  if (facts.keyBits < MIN_RSA_BITS) {
    throw fail(`The certificate key has ${facts.keyBits} bits; Entra requires at least ${MIN_RSA_BITS}.`, 'Make a new pair with mailbox-agent cert create (RSA 3072) and upload it.');
  }
  if (facts.notAfter.getTime() <= now) {
    throw fail(`The certificate ${facts.thumbprintSha256} expired on ${facts.notAfter.toISOString()}.`, 'Make a new pair with mailbox-agent cert create, upload it to the app registration and point MS_CLIENT_CERT/MS_CLIENT_KEY at it.');
  }
  return { ...facts, certPem, privateKeyPem };
}

/** The `keyCredentials` entry of the app manifest for a certificate [MICROSOFT.md "Certificate credential"]. */
export function keyCredentialOf(facts: CertificateFacts, displayName = `CN=mailbox-agent`): KeyCredential {
  return {
    customKeyIdentifier: Buffer.from(facts.thumbprintSha1, 'hex').toString('base64'),
    keyId: randomUUID(),
    type: 'AsymmetricX509Cert',
    usage: 'Verify',
    key: facts.derBase64,
    displayName,
    startDateTime: facts.notBefore.toISOString(),
    endDateTime: facts.notAfter.toISOString(),
  };
}

export interface CreatedCertificate {
  certPath: string;
  keyPath: string;
  keyCredentialsPath: string;
  facts: CertificateFacts;
  keyCredential: KeyCredential;
}

/**
 * Makes a self-signed RSA certificate and key (PEM; key mode 0600) and the manifest's keyCredentials JSON in `dir`.
 * Example: `createCertificate({ dir: 'data/cert', days: 365 })` → files cert.pem, key.pem, keyCredentials.json.
 */
export function createCertificate(options: { dir: string; days?: number; bits?: number; commonName?: string; now?: number }): CreatedCertificate {
  const days = options.days ?? DEFAULT_CERT_DAYS;
  const bits = options.bits ?? DEFAULT_RSA_BITS;
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    throw new AgentError('USAGE', `--days must be a whole number from 1 to 3650 (got ${days}).`, { remedy: 'Entra accepts certificates of up to a few years; 365 is the default.' });
  }
  if (!Number.isInteger(bits) || bits < MIN_RSA_BITS) {
    throw new AgentError('USAGE', `An RSA key of ${bits} bits is too small: Entra requires at least ${MIN_RSA_BITS}.`, { remedy: `Use ${DEFAULT_RSA_BITS} (the default).` });
  }
  const certPath = path.join(options.dir, 'cert.pem');
  const keyPath = path.join(options.dir, 'key.pem');
  const keyCredentialsPath = path.join(options.dir, 'keyCredentials.json');
  const existing = [certPath, keyPath, keyCredentialsPath].filter((p) => existsSync(p));
  if (existing.length) {
    throw new AgentError('USAGE', `${existing.join(', ')} already exist(s); cert create never overwrites a credential.`, { remedy: 'Choose another --out DIR, or move the old files away first.' });
  }
  const now = options.now ?? Date.now();
  const commonName = options.commonName ?? 'mailbox-agent';
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = new Date(now - 5 * 60_000);
  cert.validity.notAfter = new Date(now + days * 86_400_000);
  const attrs = [{ name: 'commonName', value: commonName }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);

  mkdirSync(options.dir, { recursive: true });
  writeFileSync(keyPath, keyPem, { mode: 0o600, flag: 'wx' });
  chmodSync(keyPath, 0o600);
  writeFileSync(certPath, certPem, { flag: 'wx' });
  const facts = describeCertificate(certPem);
  const keyCredential = keyCredentialOf(facts, `CN=${commonName}`);
  writeFileSync(keyCredentialsPath, `${JSON.stringify({ keyCredentials: [keyCredential] }, null, 2)}\n`, { flag: 'wx' });
  return { certPath, keyPath, keyCredentialsPath, facts, keyCredential };
}

/** A warning when a credential expires within 30 days (or has expired), else undefined. */
export function expiryWarning(what: string, notAfter: Date, now = Date.now()): string | undefined {
  const left = notAfter.getTime() - now;
  if (left > EXPIRY_WARNING_MS) return undefined;
  if (left <= 0) return `${what} expired on ${notAfter.toISOString().slice(0, 10)}.`;
  return `${what} expires on ${notAfter.toISOString().slice(0, 10)} (in ${Math.ceil(left / 86_400_000)} day(s)).`;
}
