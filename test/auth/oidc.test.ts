import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as client from 'openid-client';
import { buildAuthorizationUrl } from '../../src/auth/oidc.ts';

const CLIENT_ID = '5a4db0c5-a9e7-4b1c-8d2f-3e6a7b8c9d01';

function configWith(authorizationEndpoint: string): client.Configuration {
  return new client.Configuration({
    issuer: 'https://127.0.0.1:3100/c0de5a4d-b0c5-4e1a-8f3e-2d7b9a6c4e10/v2.0',
    authorization_endpoint: authorizationEndpoint,
    token_endpoint: 'http://127.0.0.1:3101/c0de5a4d-b0c5-4e1a-8f3e-2d7b9a6c4e10/oauth2/v2.0/token',
  }, CLIENT_ID);
}

describe('buildAuthorizationUrl: where the browser is sent', () => {
  test('a plain-HTTP authorization endpoint on loopback is accepted (the sandbox sign-in page)', () => {
    for (const host of ['127.0.0.1:3101', 'localhost:3101', '[::1]:3101']) {
      const url = buildAuthorizationUrl(configWith(`http://${host}/common/oauth2/v2.0/authorize`), { scope: 'openid', state: 's' });
      assert.equal(url.origin, `http://${host}`);
      assert.equal(url.searchParams.get('client_id'), CLIENT_ID);
      assert.equal(url.searchParams.get('state'), 's');
    }
  });

  test('a plain-HTTP authorization endpoint anywhere else is refused, as openid-client does', () => {
    assert.throws(() => buildAuthorizationUrl(configWith('http://login.example.test/common/oauth2/v2.0/authorize'), { scope: 'openid' }), /only requests to HTTPS are allowed/);
    assert.throws(() => buildAuthorizationUrl(configWith('http://127.0.0.1.example.test/authorize'), { scope: 'openid' }), /only requests to HTTPS are allowed/);
  });

  test('HTTPS endpoints are built as before, and the configuration itself stays HTTPS-only for requests', async () => {
    const config = configWith('https://login.microsoftonline.com/common/oauth2/v2.0/authorize');
    assert.equal(buildAuthorizationUrl(config, { scope: 'openid' }).origin, 'https://login.microsoftonline.com');
    const loopback = configWith('http://127.0.0.1:3101/common/oauth2/v2.0/authorize');
    buildAuthorizationUrl(loopback, { scope: 'openid' });
    // The http token endpoint of this made-up metadata is still refused: nothing was loosened on the shared configuration.
    await assert.rejects(client.refreshTokenGrant(loopback, 'rt'), /only requests to HTTPS are allowed/);
  });
});
