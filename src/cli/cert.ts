import path from 'node:path';
import { parseArgs } from 'node:util';
import { createCertificate, DEFAULT_CERT_DAYS, DEFAULT_RSA_BITS } from '../auth/certificates.ts';
import { AgentError, EXIT } from '../config/errors.ts';

const CERT_USAGE = `Usage: mailbox-agent cert create [--out DIR] [--days N] [--bits N] [--json]

Makes a self-signed RSA certificate (cert.pem) and its key (key.pem, mode 0600) for
AUTH_MODE=app-only, and keyCredentials.json for the app manifest. Defaults: --out data/cert,
--days ${DEFAULT_CERT_DAYS}, --bits ${DEFAULT_RSA_BITS} (never under 2048).`;

/**
 * `mailbox-agent cert create`: the certificate credential for app-only mode. Needs no configuration.
 * Example: `mailbox-agent cert create --out /etc/mailbox-agent --days 730`.
 */
export async function runCert(args: string[], cwd = process.cwd()): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { out: { type: 'string' }, days: { type: 'string' }, bits: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    throw new AgentError('USAGE', (error as Error).message, { remedy: CERT_USAGE });
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(CERT_USAGE);
    return EXIT.ok;
  }
  if (positionals[0] !== 'create' || positionals.length > 1) {
    throw new AgentError('USAGE', positionals[0] ? `Unknown cert command "${positionals.join(' ')}".` : 'Which cert command?', { remedy: CERT_USAGE });
  }
  const number = (flag: string, raw: string | undefined, fallback: number) => {
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw)) throw new AgentError('USAGE', `--${flag} must be a whole number (got "${raw}").`, { remedy: CERT_USAGE });
    return Number(raw);
  };
  const dir = path.resolve(cwd, values.out ?? path.join('data', 'cert'));
  const created = createCertificate({ dir, days: number('days', values.days, DEFAULT_CERT_DAYS), bits: number('bits', values.bits, DEFAULT_RSA_BITS) });
  const f = created.facts;
  if (values.json) {
    console.log(JSON.stringify({
      certPath: created.certPath, keyPath: created.keyPath, keyCredentialsPath: created.keyCredentialsPath,
      thumbprintSha1: f.thumbprintSha1, thumbprintSha256: f.thumbprintSha256, notAfter: f.notAfter.toISOString(), keyBits: f.keyBits,
      keyCredential: created.keyCredential,
    }));
    return EXIT.ok;
  }
  console.log(`Certificate: ${created.certPath} (RSA ${f.keyBits}, ${f.subject}, valid until ${f.notAfter.toISOString().slice(0, 10)})`);
  console.log(`Private key: ${created.keyPath} (mode 0600: keep it secret, never commit it)`);
  console.log(`SHA-1 thumbprint:   ${f.thumbprintSha1}   (what the Entra portal lists)`);
  console.log(`SHA-256 thumbprint: ${f.thumbprintSha256}   (what the agent signs with: PS256 + x5t#S256)`);
  console.log(`Manifest entry:     ${created.keyCredentialsPath}`);
  console.log('');
  console.log('Next:');
  console.log(`  1. Entra admin center > App registrations > your app > Certificates & secrets > Certificates > Upload certificate: ${created.certPath}`);
  console.log(`     (or add the entry of ${path.basename(created.keyCredentialsPath)} to "keyCredentials" in the app's Manifest).`);
  console.log('  2. In .env:');
  console.log(`       MS_CLIENT_CERT=${created.certPath}`);
  console.log(`       MS_CLIENT_KEY=${created.keyPath}`);
  console.log('  3. mailbox-agent doctor   (checks the credential, the token and the confinement)');
  return EXIT.ok;
}
