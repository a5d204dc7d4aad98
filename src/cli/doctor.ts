import { describeError, EXIT, isLoopback, loadConfig, type Config } from '../config/index.ts';
import { createLogger } from '../config/logger.ts';
import { buildStatus, createRuntime, type Runtime } from './runtime.ts';
import { mark, paint } from './style.ts';

interface Check {
  name: string;
  ok: boolean;
  /** Passed, but a person should know: shown with "!" and its fix; never fails doctor. */
  warn?: boolean;
  detail: string;
  fix?: string;
}

/** `mailbox-agent doctor`: a checklist with ✓/✗ and the fix for each ✗. Exit 0 when all pass. */
export async function runDoctor(env: NodeJS.ProcessEnv): Promise<number> {
  const checks: Check[] = [];
  const print = () => {
    for (const c of checks) {
      console.log(`${c.ok && c.warn ? paint('yellow', '!') : mark(c.ok)} ${c.name}: ${c.detail}`);
      if ((!c.ok || c.warn) && c.fix) console.log(`    ${paint('bold', 'fix:')} ${c.fix}`);
    }
  };
  let config;
  try {
    config = loadConfig(env);
    checks.push({ name: 'configuration', ok: true, detail: config.target === 'sandbox' ? 'valid; MS_CLIENT_ID unset, so the built-in sandbox is used' : `valid; client ${config.clientId}, tenant ${config.tenant}` });
    const redirect = redirectUriCheck(config);
    if (redirect) checks.push(redirect);
  } catch (error) {
    checks.push({ name: 'configuration', ok: false, detail: describeError(error) });
    print();
    return EXIT.failed;
  }
  let rt: Runtime | undefined;
  try {
    rt = await createRuntime(config, { log: createLogger({ level: 'warn' }), sandbox: 'shared' });
    checks.push({ name: 'jobs file', ok: true, detail: `${rt.jobs.path}: ${rt.jobs.jobs.length} job(s) (${rt.jobs.jobs.map((j) => j.name).join(', ')})` });
  } catch (error) {
    checks.push({ name: 'jobs file / runtime', ok: false, detail: describeError(error) });
    print();
    return EXIT.failed;
  }
  try {
    const discovery = `${rt.endpoints.authorityHost.origin}/${rt.endpoints.tenant}/v2.0/.well-known/openid-configuration`;
    try {
      const response = await rt.fetch(discovery, { signal: AbortSignal.timeout(10_000) });
      const body = (await response.json()) as { issuer?: string; token_endpoint?: string };
      if (!response.ok || !body.token_endpoint) throw new Error(`HTTP ${response.status}`);
      checks.push({ name: 'identity provider', ok: true, detail: `${discovery} answers; issuer ${body.issuer}` });
      const tid = tenantIdOf(body);
      if (tid && tid !== rt.endpoints.tenant.toLowerCase()) {
        checks.push({ name: 'tenant', ok: true, detail: `MS_TENANT ${rt.endpoints.tenant} is tenant ${tid} (from discovery); MS_TENANT=${tid} names it for good` });
      }
    } catch (error) {
      checks.push({ name: 'identity provider', ok: false, detail: `${discovery}: ${(error as Error).message}`, fix: 'Check MS_AUTHORITY_HOST and MS_TENANT, proxies and NODE_EXTRA_CA_CERTS.' });
    }
    const status = await buildStatus(rt);
    checks.push({
      name: 'token',
      ok: status.state === 'ready',
      detail: status.state !== 'ready' ? `${status.state}${status.reason ? `: ${status.reason}` : ''}`
        : rt.appOnly ? `app-only token for app ${rt.endpoints.clientId}, acting on ${status.account?.upn} only`
          : `signed in as ${status.account?.upn}; last refresh ${status.lastRefreshAt}`,
      fix: status.remedy,
    });
    checks.push(...(await appOnlyAndPermissionChecks(rt, status.state === 'ready', status.grantedScopes)));
    if (status.state === 'ready' && !rt.appOnly) {
      try {
        const me = await rt.graph.get<{ userPrincipalName?: string }>('/me');
        checks.push({ name: 'Microsoft Graph', ok: true, detail: `${rt.endpoints.graphUrl.origin} answers as ${me.body.userPrincipalName}` });
      } catch (error) {
        checks.push({ name: 'Microsoft Graph', ok: false, detail: describeError(error), fix: 'Check MS_GRAPH_URL and the app permissions.' });
      }
    }
  } finally {
    await rt.close();
  }
  print();
  return checks.every((c) => c.ok) ? EXIT.ok : checks.some((c) => (c.name === 'token' || c.name === 'confinement') && !c.ok) ? EXIT.needsPerson : EXIT.failed;
}

/**
 * The sign-in comes back to MS_REDIRECT_URI: when it names a loopback port other than PORT, nothing listens there.
 * Example: MS_REDIRECT_URI=http://localhost:3000/auth/callback with PORT=8080 → a warning with the fix.
 */
export function redirectUriCheck(config: Pick<Config, 'redirectUri' | 'redirectUriIsDefault' | 'port' | 'host'>): Check | undefined {
  const uri = config.redirectUri;
  if (config.redirectUriIsDefault) {
    if (isLoopback(config.host)) return undefined;
    return {
      name: 'redirect URI', ok: true, warn: true,
      detail: `MS_REDIRECT_URI is unset, so sign-in returns to ${uri.href}, which only a browser on this machine (or through an SSH tunnel to port ${config.port}) reaches; HOST is ${config.host}`,
      fix: 'To sign in from another machine, set MS_REDIRECT_URI to the https address people use (behind a TLS proxy) and register it on the app.',
    };
  }
  const port = Number(uri.port || (uri.protocol === 'https:' ? 443 : 80));
  if (!isLoopback(uri.hostname) || port === config.port) return undefined;
  return {
    name: 'redirect URI', ok: true, warn: true,
    detail: `MS_REDIRECT_URI ${uri.href} names port ${port}, but the agent listens on PORT ${config.port}: a browser sign-in would come back to a port nothing answers on`,
    fix: `Remove MS_REDIRECT_URI (the default follows PORT: http://localhost:${config.port}/auth/callback), or make its port and PORT agree.`,
  };
}

/** The tenant GUID a tenant's discovery document names (issuer or token endpoint), if any. */
function tenantIdOf(body: { issuer?: string; token_endpoint?: string }): string | undefined {
  const guid = /\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\//i;
  return (guid.exec(body.issuer ?? '') ?? guid.exec(body.token_endpoint ?? ''))?.[1]?.toLowerCase();
}

/**
 * Least privilege for both modes; for app-only also the credential and a fresh confinement proof. Access tokens are
 * opaque (docs/microsoft-notes.md "Access tokens are opaque"): permissions are read from the token response's
 * `scope` when it names them (delegated), else reported as not verifiable from the token, a warning.
 */
async function appOnlyAndPermissionChecks(rt: Runtime, tokenWorks: boolean, grantedScopes: string[] | undefined): Promise<Check[]> {
  const { requiredPermissions, DELEGATED_SCOPES } = await import('../auth/index.ts');
  const need = rt.appOnly?.permissions ?? requiredPermissions(rt.jobs);
  const why = need.needs.map((n) => `${n.permission} (${n.because.join('; ')})`).join(', ');
  const checks: Check[] = [];
  if (!rt.appOnly) {
    const extra = DELEGATED_SCOPES.filter((s) => !need.delegated.includes(s));
    const asked = `the jobs need delegated ${need.delegated.join(' ')}${why ? `: ${why}` : ''}${extra.length ? `; the agent also asks for ${extra.join(', ')} (jobs you might add)` : ''}`;
    if (!tokenWorks) {
      checks.push({ name: 'permissions', ok: true, detail: asked });
    } else if (!grantedScopes?.length) {
      checks.push({ name: 'permissions', ok: true, warn: true, detail: `${asked}; the token response named no scopes, and the access token is opaque, so what was granted cannot be verified from the token`, fix: 'A missing permission shows as a 403 on the first run of the job that needs it.' });
    } else {
      const missing = need.application.filter((p) => !scopeCovers(grantedScopes, p));
      checks.push({
        name: 'permissions',
        ok: missing.length === 0,
        detail: `${asked}; granted (from the token response): ${grantedScopes.join(' ')}`,
        fix: missing.length ? `The sign-in did not grant ${missing.join(', ')}. Add ${missing.length === 1 ? 'it' : 'them'} to the app registration's API permissions (admin consent where the tenant requires it), then sign in again: ${rt.signinUrl}` : undefined,
      });
    }
    return checks;
  }
  const { auth, guard } = rt.appOnly;
  const credential = auth.credential;
  checks.push({
    name: 'credential',
    ok: !credential.warning,
    detail: credential.kind === 'certificate'
      ? `certificate SHA-1 ${credential.thumbprintSha1} / SHA-256 ${credential.thumbprintSha256}, valid until ${credential.expiresAt?.slice(0, 10)}`
      : `client secret${credential.expiresAt ? `, expires ${credential.expiresAt.slice(0, 10)}` : ' (set MS_CLIENT_SECRET_EXPIRES to be warned before it expires; a certificate is preferred)'}`,
    fix: credential.warning ? `${credential.warning} Make a new one (mailbox-agent cert create), upload it, update .env.` : undefined,
  });
  if (!tokenWorks) return checks;
  const proof = await guard.prove();
  checks.push({
    name: 'confinement',
    ok: proof.state === 'confined',
    detail: `${proof.state}: ${proof.reason}${proof.state === 'unconfined' && guard.allowUnconfined ? ' (ALLOW_UNCONFINED=true: jobs run anyway, with a warning)' : ''}`,
    fix: proof.state === 'confined' ? undefined : `${proof.remedy ?? ''}${proof.state === 'unconfined' ? `\n${guard.script().replace(/^/gm, '      ')}` : ''}`,
  });
  // An app token's permissions are in the token itself, which is opaque to the agent; its response names none.
  checks.push({
    name: 'permissions',
    ok: true,
    warn: true,
    detail: `the jobs need application ${need.application.join(', ') || '(none)'}${why ? `: ${why}` : ''}; which permissions the app holds cannot be verified from the token (access tokens are opaque)${proof.state === 'confined' ? `, but reading ${proof.mailbox} worked` : ''}`,
    fix: `Check the app registration's API permissions (application, admin-consented) or the RBAC for Applications assignments (mailbox-agent policy) list exactly: ${need.application.join(', ') || '(none)'}.`,
  });
  return checks;
}

/** True when a granted scope list covers a permission: `Mail.ReadWrite` covers `Mail.Read`; full URIs count too. */
export function scopeCovers(granted: string[], permission: string): boolean {
  const names = new Set(granted.map((s) => s.replace(/^https:\/\/graph\.microsoft\.com\//i, '').toLowerCase()));
  const p = permission.toLowerCase();
  return names.has(p) || (p.endsWith('.read') && names.has(`${p}write`));
}
