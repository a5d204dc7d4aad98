/**
 * The environment variables' readers (src/config/env-schema.ts) accept and refuse what the zod schemas they
 * replaced did, with the same messages (one clearer: a port out of range names the range).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.ts';

const load = (env: Record<string, string>) => loadConfig(env, { envFile: false, cwd: '/srv/agent' });

function refused(env: Record<string, string>): string {
  try {
    load(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.problems.length, 1, error.message);
    return `${error.problems[0]!.key}: ${error.problems[0]!.message}`;
  }
  assert.fail(`accepted ${JSON.stringify(env)}`);
}

test('numbers: coerced as Number() does, whole where they must be, within their range', () => {
  assert.equal(load({ PORT: ' 8080 ' }).port, 8080);
  assert.equal(load({ SANDBOX_PORT: '0' }).sandboxPort, 0);
  assert.equal(load({ NOTIFY_REPEAT_HOURS: '0.5' }).notifyRepeatHours, 0.5);
  assert.equal(load({ NOTIFY_AFTER_FAILURES: '1' }).notifyAfterFailures, 1);
  assert.equal(refused({ PORT: 'eighty' }), 'PORT: must be a port number (got "eighty").');
  assert.equal(refused({ PORT: '70000' }), 'PORT: must be a port number from 0 to 65535 (got "70000").');
  assert.equal(refused({ PORT: '80.5' }), 'PORT: must be a port number from 0 to 65535 (got "80.5").');
  assert.equal(refused({ PORT: 'Infinity' }), 'PORT: must be a port number (got "Infinity").');
  assert.equal(refused({ NOTIFY_AFTER_FAILURES: '2.5' }), 'NOTIFY_AFTER_FAILURES: must be a whole number such as 3 (got "2.5").');
  assert.equal(refused({ NOTIFY_AFTER_FAILURES: '0' }), 'NOTIFY_AFTER_FAILURES: must be 1 or more (got "0").');
  assert.equal(refused({ KEEPALIVE_DAYS: '-1' }), 'KEEPALIVE_DAYS: must be greater than 0 (got "-1").');
  assert.equal(refused({ KEEPALIVE_DAYS: 'weekly' }), 'KEEPALIVE_DAYS: must be a number (got "weekly").');
});

test('URLs: absolute http(s) with their //, trimmed', () => {
  assert.equal(load({ MS_GRAPH_URL: ' https://graph.microsoft.us ' }).graphUrl.href, 'https://graph.microsoft.us/');
  assert.equal(load({ NOTIFY_URL: 'http://127.0.0.1:9/hook' }).notifyUrl?.href, 'http://127.0.0.1:9/hook');
  for (const bad of ['graph.microsoft.com', 'https:graph.microsoft.com', 'ftp://example.com', 'https://']) {
    assert.equal(refused({ MS_AUTHORITY_HOST: bad }), `MS_AUTHORITY_HOST: must be an http(s) URL such as https://login.microsoftonline.com (got "${bad}").`);
  }
});

test('choices, booleans, addresses, dates, durations, budgets and keys', () => {
  assert.equal(load({ AUTH_MODE: 'delegated' }).authMode, 'delegated');
  assert.equal(refused({ AUTH_MODE: 'app' }), `AUTH_MODE: must be 'delegated' or 'app-only' (got "app").`);
  assert.equal(refused({ LOG_LEVEL: 'verbose' }), 'LOG_LEVEL: must be one of trace, debug, info, warn, error, silent (got "verbose").');
  assert.equal(load({ TRUST_PROXY: 'yes' }).trustProxy, true);
  assert.equal(load({ TRUST_PROXY: '0' }).trustProxy, false);
  assert.equal(refused({ TRUST_PROXY: 'on' }), 'TRUST_PROXY: must be true or false (got "on").');
  assert.equal(load({ MAILBOX: 'Me@Contoso.com' }).mailbox, 'me@contoso.com');
  assert.equal(refused({ MAILBOX: 'me@contoso' }), 'MAILBOX: must be a mailbox address such as me@contoso.com (got "me@contoso").');
  assert.equal(load({ MS_CLIENT_SECRET_EXPIRES: '2028-02-29' }).clientSecretExpiresAt?.toISOString(), '2028-02-29T00:00:00.000Z');
  assert.equal(refused({ MS_CLIENT_SECRET_EXPIRES: '2027-02-29' }), 'MS_CLIENT_SECRET_EXPIRES: must be a date such as 2026-12-31 (got "***").');
  assert.equal(load({ CONFINEMENT_TTL: '90s' }).confinementTtlMs, 90_000);
  assert.equal(refused({ CONFINEMENT_TTL: 'soon' }), 'CONFINEMENT_TTL: must be a duration such as 90s, 30m, 1h or 2d (got "soon").');
  assert.deepEqual(load({ GRAPH_BUDGET: ' 500 / 1h ' }).graphBudget, { limit: 500, windowMs: 3_600_000 });
  assert.equal(refused({ GRAPH_BUDGET: '10/10m' }), 'GRAPH_BUDGET: must allow at least 20 requests (one $batch) per window, e.g. 10000/10m (got "10/10m").');
  assert.equal(refused({ GRAPH_BUDGET: 'lots' }), "GRAPH_BUDGET: must be requests/window such as 10000/10m (Outlook's limit) (got \"lots\").");
  assert.equal(refused({ STORE_URL: 'data/agent.sqlite' }), 'STORE_URL: must be a URI such as sqlite://data/agent.sqlite (got "data/agent.sqlite").');
  assert.equal(load({ MS_TENANT: ' contoso.onmicrosoft.com ' }).tenant, 'contoso.onmicrosoft.com');
  const key = Buffer.alloc(32, 7).toString('base64');
  assert.deepEqual(load({ TOKEN_KEY: ` ${key} ` }).tokenKey, Buffer.alloc(32, 7));
  assert.match(refused({ TOKEN_KEY: 'c2hvcnQ=' }), /^TOKEN_KEY: must be 32 bytes in base64; make one with: node -e/);
  assert.equal(load({ MS_CLIENT_ID: '  abc  ' }).clientId, 'abc');
});
