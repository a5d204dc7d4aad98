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
    assert.equal(value, v.default ?? v.derivedDefault ?? '', `default of ${key} in .env.example`);
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
      assert.match(error.message, /PORT: must be a port number \(got "eighty"\)\. \[set in the environment\]/, 'says where the bad value came from');
      assert.doesNotMatch(error.remedy ?? '', /the environment or the environment/);
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
  assert.throws(() => loadConfig({}, { cwd: dir }), /MS_CLIENT_ID 1234: is not KEY=VALUE.* \[\.env line 2\]/);

  writeFileSync(path.join(dir, '.env'), 'PORT=3001\nMS_TENANT="contoso.onmicrosoft.com"\n');
  const config = loadConfig({ PORT: '4000' }, { cwd: dir });
  assert.equal(config.port, 4000);
  assert.equal(config.tenant, 'contoso.onmicrosoft.com');
});

test('each bad value names where it came from: a .env line, the environment, or not set', () => {
  const dir = cwd();
  writeFileSync(path.join(dir, '.env'), ['# mine', 'AUTH_MODE=app-only', 'PORT=eighty'].join('\n'));
  assert.throws(() => loadConfig({ MS_GRAPH_URL: 'graph.microsoft.com' }, { cwd: dir }), (error: unknown) => {
    const message = (error as ConfigError).message;
    assert.match(message, /PORT: must be a port number \(got "eighty"\)\. \[set in \.env line 3\]/);
    assert.match(message, /MS_GRAPH_URL: .* \[set in the environment\]/);
    assert.match(message, /CANARY_MAILBOX: is required with AUTH_MODE=app-only.* \[not set\]/);
    assert.match((error as ConfigError).remedy ?? '', /Fix each where it is set/);
    return true;
  });
});

test('setup helpers load an unfinished app-only setup: no credential, mailbox or canary demanded', () => {
  const config = loadConfig({ AUTH_MODE: 'app-only', MS_CLIENT_ID: '11111111-2222-3333-4444-555555555555' }, { envFile: false, forSetup: true });
  assert.equal(config.authMode, 'app-only');
  assert.throws(() => loadConfig({ AUTH_MODE: 'app-only', PORT: 'x' }, { envFile: false, forSetup: true }), /PORT: must be a port number/);
});

test('the default redirect URI follows PORT; MS_REDIRECT_URI wins when set', () => {
  const config = loadConfig({ PORT: '8080' }, { envFile: false });
  assert.equal(config.redirectUri.href, 'http://localhost:8080/auth/callback');
  assert.equal(config.redirectUriIsDefault, true);
  const set = loadConfig({ PORT: '8080', MS_REDIRECT_URI: 'https://agent.example.com/auth/callback' }, { envFile: false });
  assert.equal(set.redirectUri.href, 'https://agent.example.com/auth/callback');
  assert.equal(set.redirectUriIsDefault, false);
});

test('MS_CLIENT_ID switches from the sandbox to Microsoft', () => {
  const config = loadConfig({ MS_CLIENT_ID: '11111111-2222-3333-4444-555555555555', MS_TENANT: 'organizations' }, { envFile: false });
  assert.equal(config.target, 'microsoft');
  assert.equal(config.authorityHost.origin, 'https://login.microsoftonline.com');
});
