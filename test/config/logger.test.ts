import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactText } from '../../src/config/logger.ts';
import { logCapture } from '../helpers/harness.ts';

test('tokens, codes, secrets, cookies and Authorization headers never reach a log line', () => {
  const { lines, log } = logCapture();
  log.info({
    access_token: 'eyJhbGciOi.secret.access',
    refresh_token: '0.ARrefresh-secret',
    response: { id_token: 'eyJid.token.value', code: 'auth-code-secret', client_secret: 'shh-secret' },
    headers: { authorization: 'Bearer abc.def.ghi', cookie: 'ma_session=cookie-secret' },
    req: { headers: { authorization: 'Bearer xyz-secret', cookie: 'ma_csrf=csrf-secret' } },
    password: 'hunter2-secret',
  }, 'something happened');
  const text = lines.join('\n');
  assert.match(text, /something happened/);
  for (const secret of ['secret.access', 'refresh-secret', 'token.value', 'auth-code-secret', 'shh-secret', 'abc.def.ghi', 'cookie-secret', 'xyz-secret', 'csrf-secret', 'hunter2']) {
    assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
  }
  assert.match(text, /\[redacted\]/);
});

test('free text is scrubbed of bearer tokens, JWTs and secret query parameters', () => {
  const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl';
  assert.equal(redactText(`Authorization: Bearer ${jwt}`), 'Authorization: Bearer [redacted]');
  assert.equal(redactText(`token ${jwt} here`), 'token [redacted-jwt] here');
  assert.equal(redactText('GET /auth/callback?code=0.AXEA123&state=abc'), 'GET /auth/callback?code=[redacted]&state=abc');
  assert.equal(redactText('https://x/?client_secret=s3cr3t&a=1'), 'https://x/?client_secret=[redacted]&a=1');
});
