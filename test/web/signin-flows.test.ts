import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SigninFlows } from '../../src/web/signin-flows.ts';

const pending = (createdAt: number) => ({ state: 's', nonce: 'n', codeVerifier: 'v', createdAt });

test('a flow is taken once, and not after it expired', () => {
  let now = 1000;
  const flows = new SigninFlows(600_000, () => now);
  const id = flows.create(pending(now));
  assert.ok(id.length >= 32);
  assert.equal(flows.take(id)?.state, 's');
  assert.equal(flows.take(id), undefined, 'replay finds nothing');
  const old = flows.create(pending(now));
  now += 600_001;
  assert.equal(flows.take(old), undefined);
  assert.equal(flows.take(undefined), undefined);
  assert.equal(flows.take('forged'), undefined);
});
