import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyTokenError } from '../../src/auth/index.ts';

const entra = (code: number, error = 'invalid_grant') => ({
  error,
  error_description: `AADSTS${code}: something.\r\nTrace ID: x\r\nCorrelation ID: y\r\nTimestamp: 2026-11-22 10:00:00Z`,
  error_codes: [code],
});

test('every AADSTS row of the error table maps to its class', () => {
  const expected: Record<number, string> = {
    70008: 'needs-signin', 700082: 'needs-signin', 700081: 'needs-signin', 700084: 'needs-signin', 50173: 'needs-signin', 65001: 'needs-signin',
    50076: 'needs-signin', 50079: 'needs-signin', 50078: 'needs-signin', 70043: 'needs-signin', 53003: 'needs-signin',
    90094: 'config', 700016: 'config', 7000215: 'config', 7000222: 'config', 700027: 'config', 7000112: 'config', 50011: 'config',
    7000218: 'config', 50194: 'config', 9002327: 'config',
  };
  for (const [code, kind] of Object.entries(expected)) {
    const failure = classifyTokenError(entra(Number(code)), 400);
    assert.equal(failure.kind, kind, `AADSTS${code}`);
    assert.equal(failure.aadsts, Number(code));
    assert.match(failure.reason, new RegExp(`AADSTS${code}`));
  }
  assert.match(classifyTokenError(entra(50173), 400).reason, /password was changed/);
});

test('the code is read from error_description when error_codes is missing', () => {
  assert.equal(classifyTokenError({ error: 'invalid_grant', error_description: 'AADSTS700082: The refresh token has expired' }, 400).aadsts, 700082);
});

test('standard OAuth errors from any provider', () => {
  assert.equal(classifyTokenError({ error: 'invalid_grant' }, 400).kind, 'needs-signin');
  assert.equal(classifyTokenError({ error: 'interaction_required' }, 400).kind, 'needs-signin');
  assert.equal(classifyTokenError({ error: 'consent_required' }, 400).kind, 'needs-signin');
  assert.equal(classifyTokenError({ error: 'login_required' }, 400).kind, 'needs-signin');
  assert.equal(classifyTokenError({ error: 'invalid_client' }, 401).kind, 'config');
  assert.equal(classifyTokenError({ error: 'temporarily_unavailable' }, 400).kind, 'transient');
});

test('5xx and 429 are transient even with an error body: the token is never thrown away for them', () => {
  assert.equal(classifyTokenError(entra(50173), 503).kind, 'transient');
  assert.equal(classifyTokenError(undefined, 500).kind, 'transient');
  assert.equal(classifyTokenError({ error: 'invalid_grant' }, 429).kind, 'transient');
  assert.equal(classifyTokenError({ error: 'something_new' }, 400).kind, 'transient');
});

test('conditions that may clear by themselves keep the grant; revoked or expired grants do not', () => {
  for (const code of [53003, 50076, 50079, 50078, 70043, 65001]) assert.equal(classifyTokenError(entra(code), 400).mayClear, true, `AADSTS${code}`);
  for (const code of [50173, 700082, 70008, 700081, 700084]) assert.equal(classifyTokenError(entra(code), 400).mayClear, undefined, `AADSTS${code}`);
  assert.equal(classifyTokenError({ error: 'invalid_grant' }, 400).mayClear, undefined);
  assert.equal(classifyTokenError({ error: 'interaction_required' }, 400).mayClear, true);
  // msal-common drops a refresh token for suberror bad_token whatever the code.
  assert.equal(classifyTokenError({ ...entra(50076), suberror: 'bad_token' }, 400).mayClear, undefined);
});

test('registration traps name the exact setting to change', () => {
  assert.match(classifyTokenError(entra(7000218, 'invalid_client'), 401).remedy, /"Allow public client flows" and set it to Yes/);
  assert.match(classifyTokenError(entra(50194, 'invalid_request'), 400).remedy, /Set MS_TENANT in \.env to your Directory \(tenant\) ID/);
  assert.match(classifyTokenError(entra(9002327, 'invalid_request'), 400).remedy, /"Mobile and desktop applications"/);
  // A public client (no secret) that gets a bare invalid_client is not told to check a secret it does not have.
  assert.match(classifyTokenError({ error: 'invalid_client' }, 401).remedy, /without one, the app registration needs "Allow public client flows: Yes"/);
});
