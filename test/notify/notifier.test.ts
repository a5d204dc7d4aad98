import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Notifier } from '../../src/notify/index.ts';
import { memoryStore, type Store } from '../../src/store/index.ts';
import { logCapture } from '../helpers/harness.ts';
import { startWebhook } from './webhook.ts';

describe('Notifier', () => {
  let hook: Awaited<ReturnType<typeof startWebhook>>;
  let store: Store;
  let clock: number;
  let capture: ReturnType<typeof logCapture>;
  const HOUR = 3_600_000;
  const make = () => new Notifier({ url: new URL(hook.url), repeatMs: 24 * HOUR, store, log: capture.log, signinUrl: 'http://127.0.0.1:3000/auth/signin', now: () => clock });
  const deadToken = { event: 'needs-signin', reason: 'Your tokens were revoked, for example because your password was changed (AADSTS50173).', remedy: 'Sign in again: http://127.0.0.1:3000/auth/signin' };

  before(async () => {
    hook = await startWebhook();
  });
  after(() => hook.close());
  beforeEach(() => {
    hook.received.length = 0;
    hook.setStatus(204);
    store = memoryStore(randomBytes(32));
    clock = Date.parse('2026-03-01T08:00:00Z');
    capture = logCapture();
  });

  test('one POST per state change, with event, reason, remedy, signinUrl and at', async () => {
    const n = make();
    await n.raise('auth', deadToken);
    await n.raise('auth', deadToken);
    await n.raise('auth', { ...deadToken, reason: 'The sign-in has expired or was revoked (AADSTS70008).' });
    assert.equal(hook.received.length, 1);
    const [msg] = hook.received;
    assert.equal(msg!.event, 'needs-signin');
    assert.equal(msg!.reason, deadToken.reason);
    assert.equal(msg!.remedy, deadToken.remedy);
    assert.equal(msg!.signinUrl, 'http://127.0.0.1:3000/auth/signin');
    assert.equal(msg!.at, '2026-03-01T08:00:00.000Z');
    assert.equal(msg!.key, 'auth');
    assert.equal(msg!.reminder, false);
    assert.equal(msg!._contentType, 'application/json');

    clock += HOUR;
    await n.resolve('auth');
    await n.resolve('auth');
    assert.equal(hook.received.length, 2);
    assert.equal(hook.received[1]!.event, 'recovered');
    assert.equal(hook.received[1]!.since, '2026-03-01T08:00:00.000Z');
    assert.deepEqual(await n.active(), []);
  });

  test('a reminder every NOTIFY_REPEAT_HOURS while unresolved, and none after a restart that is not due', async () => {
    const n = make();
    await n.raise('auth', deadToken);
    clock += 23 * HOUR;
    await n.tick();
    assert.equal(hook.received.length, 1, 'not due yet');
    // A restart (a new Notifier on the same store) neither repeats the first message nor forgets the condition.
    const restarted = make();
    await restarted.raise('auth', deadToken);
    await restarted.tick();
    assert.equal(hook.received.length, 1);
    clock += HOUR;
    await restarted.tick();
    assert.equal(hook.received.length, 2);
    assert.equal(hook.received[1]!.reminder, true);
    assert.equal(hook.received[1]!.event, 'needs-signin');
    clock += 24 * HOUR;
    await restarted.tick();
    await restarted.tick();
    assert.equal(hook.received.length, 3, 'one reminder per interval');
  });

  test('a failing webhook is logged (without its secret path), retried with back-off, and never throws', async () => {
    hook.setStatus(500);
    const n = make();
    await n.raise('job:triage', { event: 'job-failing', reason: 'triage failed 3 times', remedy: 'See the log' });
    assert.equal(hook.received.length, 0);
    assert.ok(capture.lines.some((l) => /webhook refused the notification/.test(l)));
    assert.ok(!capture.lines.some((l) => l.includes('SECRET-PATH-123')), 'the webhook path may hold a secret');
    hook.setStatus(204);
    await n.tick();
    assert.equal(hook.received.length, 0, 'the retry waits a minute');
    clock += 60_000;
    await n.tick();
    assert.equal(hook.received.length, 1);
    assert.equal(hook.received[0]!.event, 'job-failing');
    assert.equal(hook.received[0]!.reminder, false);
    await n.tick();
    assert.equal(hook.received.length, 1);

    // An unreachable webhook is the same: logged, retried.
    const down = new Notifier({ url: new URL('http://127.0.0.1:9/unreachable'), repeatMs: HOUR, store, log: capture.log, signinUrl: 'x', now: () => clock });
    await down.raise('other', { event: 'needs-signin', reason: 'r', remedy: 'm' });
    assert.ok(capture.lines.some((l) => /could not be reached/.test(l)));
  });

  test('a failed "recovered" delivery is retried too', async () => {
    const n = make();
    await n.raise('auth', deadToken);
    hook.setStatus(503);
    await n.resolve('auth');
    hook.setStatus(204);
    clock += 60_000;
    await n.tick();
    assert.deepEqual(hook.received.map((m) => m.event), ['needs-signin', 'recovered']);
    await n.tick();
    assert.equal(hook.received.length, 2);
  });

  test('without NOTIFY_URL the condition is still tracked and logged', async () => {
    const n = new Notifier({ repeatMs: HOUR, store, log: capture.log, signinUrl: 'x', now: () => clock });
    await n.raise('auth', deadToken);
    assert.equal((await n.active())[0]!.event, 'needs-signin');
    assert.ok(capture.lines.some((l) => /a person is needed/.test(l)));
    await n.resolve('auth');
    assert.deepEqual(await n.active(), []);
  });
});
