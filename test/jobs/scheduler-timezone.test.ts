// The host's zone must never leak into the schedules: run in a zone far from both UTC and the mailbox's.
process.env.TZ ??= 'America/New_York';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import { GraphError } from '../../src/graph/graph-error.ts';
import type { JobRunner } from '../../src/jobs/index.ts';
import { readScheduleZone, ScheduleZone, type ScheduleTimeZone } from '../../src/jobs/schedule-zone.ts';
import { nextRunOf, Scheduler } from '../../src/jobs/scheduler.ts';
import { memoryStore, type Store } from '../../src/store/index.ts';
import { logCapture } from '../helpers/harness.ts';

const DAY = 86_400_000;
/** "07:00" for 07:00 local time in `zone`. */
const localTime = (date: Date | null, zone: string) =>
  new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(date!);
const utcTime = (date: Date | null) => date!.toISOString().slice(11, 16);
const runner = { jobs: [{ name: 'agenda', schedule: '0 7 * * *' }] } as unknown as JobRunner;

function setup(options: { fileZone?: string; settings?: () => Promise<{ timeZone?: string }> } = {}) {
  const { lines, log } = logCapture();
  const store: Store = memoryStore(randomBytes(32));
  let now = Date.parse('2026-12-01T12:00:00Z');
  let identity: string | undefined;
  let reads = 0;
  const zone = new ScheduleZone({
    fileZone: options.fileZone,
    store,
    readSettings: async () => {
      reads++;
      return (options.settings ?? (async () => ({ timeZone: 'Tokyo Standard Time' })))();
    },
    identity: async () => identity,
    log,
    now: () => now,
  });
  return {
    zone, store, lines, log,
    signIn: (who: string) => (identity = who),
    signOut: () => (identity = undefined),
    advance: (ms: number) => (now += ms),
    reads: () => reads,
  };
}

describe('schedules run in the jobs file\'s zone, else the mailbox\'s, else UTC (never the host\'s)', () => {
  const started: Scheduler[] = [];
  afterEach(async () => {
    for (const s of started.splice(0)) await s.stop(1000);
  });

  test('the test process really runs in another zone than UTC and Tokyo', () => {
    assert.notEqual(new Date('2026-12-01T12:00:00Z').getTimezoneOffset(), 0, `TZ=${process.env.TZ}`);
  });

  test('without a zone, nextRunOf and the scheduler use UTC, not the host\'s zone', async () => {
    assert.equal(utcTime(nextRunOf('0 7 * * *')), '07:00');
    const { log } = logCapture();
    const scheduler = new Scheduler(runner, log);
    started.push(scheduler);
    scheduler.start();
    assert.equal(scheduler.timezone, 'UTC');
    assert.equal(utcTime(scheduler.nextRun('agenda')), '07:00');
  });

  test('a mailbox in "Tokyo Standard Time": 0 7 * * * fires at 07:00 Tokyo (22:00 UTC), re-scheduled once someone signs in', async () => {
    const t = setup();
    const first = await t.zone.load();
    assert.deepEqual([first.name, first.source], ['UTC', 'utc-fallback']);
    const scheduler = new Scheduler(runner, t.log, first.name);
    started.push(scheduler);
    const changes: ScheduleTimeZone[] = [];
    t.zone.onChange((z) => {
      changes.push(z);
      void scheduler.setTimezone(z.name);
    });
    scheduler.start();

    // Nobody signed in: the mailbox is not asked (runs are paused by the scheduler's gate anyway).
    assert.equal((await t.zone.refresh()).source, 'utc-fallback');
    assert.equal(t.reads(), 0);

    t.signIn('alice signed in 1');
    const zone = await t.zone.refresh();
    assert.deepEqual({ name: zone.name, source: zone.source }, { name: 'Asia/Tokyo', source: 'mailbox' });
    assert.equal(changes.length, 1);
    assert.equal(scheduler.timezone, 'Asia/Tokyo');
    const next = scheduler.nextRun('agenda');
    assert.equal(localTime(next, 'Asia/Tokyo'), '07:00');
    assert.equal(utcTime(next), '22:00');
    // status reads the same zone from the store's cache.
    assert.deepEqual(await readScheduleZone(undefined, t.store), zone);
    assert.equal(utcTime(nextRunOf('0 7 * * *', (await readScheduleZone(undefined, t.store)).name)), '22:00');
  });

  test('the mailbox\'s zone is read at most daily, again after a new sign-in, and kept while signed out', async () => {
    const t = setup();
    await t.zone.load();
    t.signIn('alice signed in 1');
    await t.zone.refresh();
    await t.zone.refresh();
    t.advance(DAY - 60_000);
    await t.zone.refresh();
    assert.equal(t.reads(), 1, 'cached for a day');
    t.advance(120_000);
    await t.zone.refresh();
    assert.equal(t.reads(), 2, 'read again after a day');
    t.signIn('alice signed in 2');
    await t.zone.refresh();
    assert.equal(t.reads(), 3, 'read again right after a new sign-in');
    t.signOut();
    assert.equal((await t.zone.refresh()).name, 'Asia/Tokyo');
    assert.equal(t.reads(), 3);
  });

  test('the jobs file\'s timezone wins; the mailbox is never asked', async () => {
    const t = setup({ fileZone: 'Europe/Berlin' });
    t.signIn('alice signed in 1');
    const zone = await t.zone.load();
    assert.deepEqual(await t.zone.refresh(), { name: 'Europe/Berlin', source: 'jobs-file' });
    assert.equal(t.reads(), 0);
    const scheduler = new Scheduler(runner, t.log, zone.name);
    started.push(scheduler);
    scheduler.start();
    assert.equal(localTime(scheduler.nextRun('agenda'), 'Europe/Berlin'), '07:00');
    assert.deepEqual(await readScheduleZone('Europe/Berlin', t.store), { name: 'Europe/Berlin', source: 'jobs-file' });
  });

  test('mailboxSettings refused (403, Outlook.com): UTC with a warning and the reason', async () => {
    const refused = new GraphError({ status: 403, code: 'ErrorAccessDenied', message: 'Access is denied. Check credentials and try again.', method: 'GET', path: '/me/mailboxSettings' });
    const t = setup({ settings: () => Promise.reject(refused) });
    await t.zone.load();
    t.signIn('carol signed in 1');
    const zone = await t.zone.refresh();
    assert.equal(zone.name, 'UTC');
    assert.equal(zone.source, 'utc-fallback');
    assert.match(zone.reason!, /403.*timezone: in the jobs file/);
    assert.ok(t.lines.some((l) => /"level":"warn"/.test(l) && /refused the mailbox's settings/.test(l)), t.lines.join('\n'));
    await t.zone.refresh();
    assert.equal(t.reads(), 1, 'the refusal is cached like an answer');
  });

  test('a failed read (Graph 503) keeps the zone known before, and is retried later, not on every check', async () => {
    let fail = false;
    const t = setup({ settings: async () => {
      if (fail) throw new GraphError({ status: 503, code: 'ServiceUnavailable', message: 'down', method: 'GET', path: '/me/mailboxSettings' });
      return { timeZone: 'Tokyo Standard Time' };
    } });
    await t.zone.load();
    t.signIn('alice signed in 1');
    await t.zone.refresh();
    fail = true;
    t.advance(DAY + 1);
    assert.equal((await t.zone.refresh()).name, 'Asia/Tokyo');
    assert.equal((await t.zone.refresh()).name, 'Asia/Tokyo');
    assert.equal(t.reads(), 2, 'no second attempt right away');
    assert.ok(t.lines.some((l) => /could not read the mailbox's time zone/.test(l)));
  });

  test('a zone name nobody knows: UTC with the name and the fix, not a stuck scheduler', async () => {
    const t = setup({ settings: async () => ({ timeZone: 'Customized Time Zone' }) });
    await t.zone.load();
    t.signIn('alice signed in 1');
    const zone = await t.zone.refresh();
    assert.equal(zone.source, 'utc-fallback');
    assert.match(zone.reason!, /Unknown time zone "Customized Time Zone".*timezone: in the jobs file/);
  });
});
