// Unit tests of doctor's pure checks (no process needed: each takes the loaded configuration or a scope list).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redirectUriCheck, scopeCovers } from '../../src/cli/doctor.ts';
import { loadConfig } from '../../src/config/index.ts';

test('doctor warns when MS_REDIRECT_URI names a loopback port other than PORT, with the fix', () => {
  const check = redirectUriCheck(loadConfig({ PORT: '8080', MS_REDIRECT_URI: 'http://localhost:3000/auth/callback' }, { envFile: false }));
  assert.equal(check?.ok, true);
  assert.equal(check?.warn, true);
  assert.match(check!.detail, /names port 3000, but the agent listens on PORT 8080/);
  assert.match(check!.fix!, /Remove MS_REDIRECT_URI \(the default follows PORT: http:\/\/localhost:8080\/auth\/callback\)/);
});

test('no redirect warning when they agree, when the default follows PORT, or for an https address behind a proxy', () => {
  assert.equal(redirectUriCheck(loadConfig({ PORT: '8080', MS_REDIRECT_URI: 'http://localhost:8080/auth/callback' }, { envFile: false })), undefined);
  assert.equal(redirectUriCheck(loadConfig({ PORT: '8080' }, { envFile: false })), undefined);
  assert.equal(redirectUriCheck(loadConfig({ PORT: '8080', MS_REDIRECT_URI: 'https://agent.example.com/auth/callback' }, { envFile: false })), undefined);
});

test('a non-loopback HOST with the default redirect URI gets a warning saying what to set', () => {
  const check = redirectUriCheck(loadConfig({ HOST: '0.0.0.0', ADMIN_PASSWORD: 'pw' }, { envFile: false }));
  assert.equal(check?.warn, true);
  assert.match(check!.fix!, /set MS_REDIRECT_URI to the https address/);
});

test('granted scopes from the token response cover a permission, ReadWrite covering Read, full URIs too', () => {
  assert.equal(scopeCovers(['openid', 'Mail.ReadWrite', 'User.Read'], 'Mail.Read'), true);
  assert.equal(scopeCovers(['https://graph.microsoft.com/Mail.Send'], 'Mail.Send'), true);
  assert.equal(scopeCovers(['Mail.Read'], 'Mail.ReadWrite'), false);
  assert.equal(scopeCovers(['mail.send'], 'Calendars.Read'), false);
});
