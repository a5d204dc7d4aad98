import { describeError, EXIT, loadConfig } from '../config/index.ts';
import { createLogger } from '../config/logger.ts';
import { buildStatus, createRuntime, type Runtime } from './runtime.ts';
import { mark, paint } from './style.ts';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

/** `mailbox-agent doctor`: a checklist with ✓/✗ and the fix for each ✗. Exit 0 when all pass. */
export async function runDoctor(env: NodeJS.ProcessEnv): Promise<number> {
  const checks: Check[] = [];
  const print = () => {
    for (const c of checks) {
      console.log(`${mark(c.ok)} ${c.name}: ${c.detail}`);
      if (!c.ok && c.fix) console.log(`    ${paint('bold', 'fix:')} ${c.fix}`);
    }
  };
  let config;
  try {
    config = loadConfig(env);
    checks.push({ name: 'configuration', ok: true, detail: config.target === 'sandbox' ? 'valid; MS_CLIENT_ID unset, so the built-in sandbox is used' : `valid; client ${config.clientId}, tenant ${config.tenant}` });
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
        : rt.appOnly ? `app-only token for app ${rt.endpoints.clientId} (service principal ${status.account?.oid}), acting on ${status.account?.upn} only`
          : `signed in as ${status.account?.upn}; last refresh ${status.lastRefreshAt}`,
      fix: status.remedy,
    });
    checks.push(...(await appOnlyAndPermissionChecks(rt, status.state === 'ready')));
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

/** The tenant GUID a tenant's discovery document names (issuer or token endpoint), if any. */
function tenantIdOf(body: { issuer?: string; token_endpoint?: string }): string | undefined {
  const guid = /\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\//i;
  return (guid.exec(body.issuer ?? '') ?? guid.exec(body.token_endpoint ?? ''))?.[1]?.toLowerCase();
}

/** Least privilege for both modes; for app-only also the credential, the token's roles and a fresh confinement proof. */
async function appOnlyAndPermissionChecks(rt: Runtime, tokenWorks: boolean): Promise<Check[]> {
  const { requiredPermissions, DELEGATED_SCOPES } = await import('../auth/index.ts');
  const need = rt.appOnly?.permissions ?? requiredPermissions(rt.jobs);
  const why = need.needs.map((n) => `${n.permission} (${n.because.join('; ')})`).join(', ');
  const checks: Check[] = [];
  if (!rt.appOnly) {
    const extra = DELEGATED_SCOPES.filter((s) => !need.delegated.includes(s));
    checks.push({ name: 'permissions', ok: true, detail: `the jobs need delegated ${need.delegated.join(' ')}${why ? `: ${why}` : ''}${extra.length ? `; the agent also asks for ${extra.join(', ')} (jobs you might add)` : ''}` });
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
  const roles = (await auth.lastToken())?.roles ?? [];
  const covered = (p: string) => roles.includes(p) || (p === 'Mail.Read' && roles.includes('Mail.ReadWrite'));
  const missing = need.application.filter((p) => !covered(p));
  const extra = roles.filter((r) => !need.application.includes(r as never));
  const viaRbac = proof.mechanism === 'rbac-for-applications';
  checks.push({
    name: 'permissions',
    ok: viaRbac || missing.length === 0,
    detail: `the jobs need application ${need.application.join(', ') || '(none)'}${why ? `: ${why}` : ''}; the token carries ${roles.join(', ') || 'no Entra roles'}${viaRbac ? ' (RBAC for Applications grants within its scope)' : ''}${extra.length ? `; more than needed: ${extra.join(', ')} (least privilege: remove them)` : ''}`,
    fix: missing.length && !viaRbac ? `Add the application permission(s) ${missing.join(', ')} to the app registration and grant admin consent, or assign them with RBAC for Applications (mailbox-agent policy).` : undefined,
  });
  return checks;
}
