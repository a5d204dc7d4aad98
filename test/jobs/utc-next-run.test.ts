import assert from 'node:assert/strict';
import { test } from 'node:test';
import cron from 'node-cron';
import { nextRunOf } from '../../src/jobs/scheduler.ts';
import { nextUtcRun } from '../../src/jobs/utc-next-run.ts';

/** node-cron's own next match after `from` in UTC (its walk, through Intl). */
function nodeCronNext(schedule: string, from: Date): Date {
  const task = cron.createTask(schedule, () => undefined, { timezone: 'UTC' }) as unknown as { timeMatcher: { getNextMatch(d: Date): Date }; destroy(): unknown };
  try {
    return task.timeMatcher.getNextMatch(from);
  } finally {
    void task.destroy();
  }
}

test("status's next run in UTC starts no ICU (no Intl.DateTimeFormat); another zone still goes through node-cron", () => {
  const Real = Intl.DateTimeFormat;
  let made = 0;
  const counting = function (this: unknown, ...args: ConstructorParameters<typeof Intl.DateTimeFormat>) {
    made++;
    return new Real(...args);
  } as unknown as typeof Intl.DateTimeFormat;
  Object.assign(counting, Real);
  Intl.DateTimeFormat = counting;
  try {
    const next = nextRunOf('*/5 * * * *', 'UTC');
    assert.ok(next && next.getTime() > Date.now() && next.getTime() <= Date.now() + 5 * 60_000 && next.getUTCMinutes() % 5 === 0);
    assert.equal(made, 0, 'Intl.DateTimeFormat was used for a UTC schedule');
    nextRunOf('*/5 * * * *', 'Europe/Berlin');
    assert.ok(made > 0, 'the counter sees node-cron');
  } finally {
    Intl.DateTimeFormat = Real;
  }
});

test("the UTC walk agrees with node-cron's own, schedule by schedule and instant by instant", () => {
  const schedules = [
    '*/5 * * * *', '0 9 * * 1-5', '30 8,17 * * *', '0 0 1 * *', '0 12 29 2 *', '15 3 * * 0', '0 9 * * 7', '@daily', '@hourly',
    '0 8 1 jan *', '*/10 * * * * *', '0 0 31 * *', '45 23 * 12 fri', '0 */6 * * *', '5-10 4 * * *', '0 0 13 * 5',
  ];
  const instants = ['2026-12-02T01:44:59.500Z', '2026-12-31T23:59:59.999Z', '2027-02-28T12:00:00Z', '2028-02-29T00:00:00Z', '2026-03-29T00:59:00Z', '2026-12-07T09:00:00Z'].map((s) => new Date(s));
  for (const schedule of schedules) {
    for (const from of instants) {
      assert.equal(nextUtcRun(cron.parse(schedule), from)?.toISOString(), nodeCronNext(schedule, from).toISOString(), `${schedule} after ${from.toISOString()}`);
    }
  }
});

test("node-cron's day tokens (L, W, #) are left to node-cron", () => {
  for (const schedule of ['0 0 L * *', '0 0 1W * *', '0 12 * * 5L', '0 0 * * 1#2']) {
    assert.equal(nextUtcRun(cron.parse(schedule), new Date()), undefined, schedule);
    assert.equal(nextRunOf(schedule, 'UTC')?.toISOString(), nodeCronNext(schedule, new Date()).toISOString(), schedule);
  }
});
