import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, ENV_VARS, loadConfig, readEnvFile } from '../../src/config/index.ts';

const cwd = () => mkdtempSync(path.join(tmpdir(), 'ma-config-'));

test('.env.example documents every variable of the schema, with its default, and nothing else', () => {
  const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
  const documented = [...text.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!] as const);
  assert.deepEqual(documented.map(([k]) => k).sort(), ENV_VARS.map((v) => v.key).sort());
  for (const [key, value] of documented) {
    const v = ENV_VARS.find((e) => e.key === key)!;
    assert.equal(value, v.default ?? '', `default of ${key} in .env.example`);
    assert.ok(text.includes(v.description), `description of ${key} in .env.example`);
  }
});

test('defaults: sandbox target, loopback UI, sqlite store', () => {
  const config = loadConfig({}, { envFile: false, cwd: '/srv/agent' });
  assert.equal(config.target, 'sandbox');
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.port, 3000);
  assert.equal(config.tenant, 'common');
  assert.equal(config.storeUrl, 'sqlite://data/agent.sqlite');
  assert.equal(config.redirectUri.href, 'http://localhost:3000/auth/callback');
  assert.equal(config.confinementTtlMs, 3_600_000);
  assert.equal(config.allowUnconfined, false);
  assert.equal(config.agentConfigPath, '/srv/agent/agent.config.yaml');
});

test('every bad key is reported at once, each with its fix', () => {
  assert.throws(
    () => loadConfig({ PORT: 'eighty', MS_GRAPH_URL: 'graph.microsoft.com', TOKEN_KEY: 'c2hvcnQ=', AUTH_MODE: 'app', CONFINEMENT_TTL: 'soon' }, { envFile: false }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems.map((p) => p.key).sort(), ['AUTH_MODE', 'CONFINEMENT_TTL', 'MS_GRAPH_URL', 'PORT', 'TOKEN_KEY']);
      assert.match(error.message, /TOKEN_KEY: must be 32 bytes in base64; make one with/);
      assert.match(error.message, /CONFINEMENT_TTL: must be a duration such as 90s/);
      assert.doesNotMatch(error.message, /c2hvcnQ=/, 'a key value is never echoed');
      assert.equal(error.code, 'CONFIG_INVALID');
      return true;
    },
  );
});

test('a non-loopback HOST without ADMIN_PASSWORD is refused, with the fix', () => {
  assert.throws(() => loadConfig({ HOST: '0.0.0.0' }, { envFile: false }), /HOST: is "0\.0\.0\.0", reachable from other machines, but ADMIN_PASSWORD is not set/);
  assert.equal(loadConfig({ HOST: '0.0.0.0', ADMIN_PASSWORD: 'x' }, { envFile: false }).host, '0.0.0.0');
  assert.equal(loadConfig({ HOST: '::1' }, { envFile: false }).host, '::1');
});

test('app-only needs a mailbox, a canary and a credential', () => {
  assert.throws(() => loadConfig({ AUTH_MODE: 'app-only' }, { envFile: false }), (error: unknown) => {
    assert.deepEqual((error as ConfigError).problems.map((p) => p.key).sort(), ['CANARY_MAILBOX', 'MAILBOX', 'MS_CLIENT_CERT', 'MS_CLIENT_ID']);
    return true;
  });
});

test('a broken .env names the line and the fix; the environment wins over the file', () => {
  const dir = cwd();
  writeFileSync(path.join(dir, '.env'), ['# comment', 'MS_CLIENT_ID 1234', 'MS_CLIENTID=abc', 'PORT=3001', 'PORT=3002', 'MS_TENANT="contoso.onmicrosoft.com"'].join('\n'));
  const { problems } = readEnvFile(path.join(dir, '.env'));
  assert.deepEqual(problems.map((p) => [p.line, p.key]), [[2, 'MS_CLIENT_ID 1234'], [3, 'MS_CLIENTID'], [5, 'PORT']]);
  assert.match(problems[1]!.message, /Did you mean MS_CLIENT_ID\?/);
  assert.throws(() => loadConfig({}, { cwd: dir }), /\.env:2 MS_CLIENT_ID 1234: is not KEY=VALUE/);

  writeFileSync(path.join(dir, '.env'), 'PORT=3001\nMS_TENANT="contoso.onmicrosoft.com"\n');
  const config = loadConfig({ PORT: '4000' }, { cwd: dir });
  assert.equal(config.port, 4000);
  assert.equal(config.tenant, 'contoso.onmicrosoft.com');
});

test('MS_CLIENT_ID switches from the sandbox to Microsoft', () => {
  const config = loadConfig({ MS_CLIENT_ID: '11111111-2222-3333-4444-555555555555', MS_TENANT: 'organizations' }, { envFile: false });
  assert.equal(config.target, 'microsoft');
  assert.equal(config.authorityHost.origin, 'https://login.microsoftonline.com');
});
