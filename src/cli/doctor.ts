import { describeError, EXIT, loadConfig } from '../config/index.ts';
import { createLogger } from '../config/logger.ts';
import { buildStatus, createRuntime, type Runtime } from './runtime.ts';

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
      console.log(`${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}`);
      if (!c.ok && c.fix) console.log(`    fix: ${c.fix}`);
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
    } catch (error) {
      checks.push({ name: 'identity provider', ok: false, detail: `${discovery}: ${(error as Error).message}`, fix: 'Check MS_AUTHORITY_HOST and MS_TENANT, proxies and NODE_EXTRA_CA_CERTS.' });
    }
    const status = await buildStatus(rt);
    checks.push({
      name: 'token',
      ok: status.state === 'ready',
      detail: status.state === 'ready' ? `signed in as ${status.account?.upn}; last refresh ${status.lastRefreshAt}` : `${status.state}${status.reason ? `: ${status.reason}` : ''}`,
      fix: status.remedy,
    });
    if (status.state === 'ready') {
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
  return checks.every((c) => c.ok) ? EXIT.ok : checks.some((c) => c.name === 'token' && !c.ok) ? EXIT.needsPerson : EXIT.failed;
}
