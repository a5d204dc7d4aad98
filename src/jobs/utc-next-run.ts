/**
 * The next time a schedule fires in UTC, from the fields node-cron parses (`cron.parse`), with Date's UTC methods.
 *
 * Why: node-cron's own walk formats every candidate with `Intl.DateTimeFormat`, even in UTC, and the first
 * `Intl` of a process starts ICU (25–200 ms; docs/BENCHMARKS.md), which `status` paid for one next run per job.
 * The walk is node-cron's (MatcherWalker): from the start of the current second, day by day, the first day whose
 * month, day of month and weekday are all allowed (node-cron ANDs the two day fields), then the first allowed
 * time of that day after the start. Only fields of plain numbers are walked here; node-cron's day tokens
 * (`L`, `15W`, `5L`, `1#2`) return undefined, and so does a schedule that never fires, so the caller asks
 * node-cron itself. test/jobs/utc-next-run.test.ts checks the two agree.
 */
import type { ParsedFields } from 'node-cron';

/** node-cron gives up after a hundred years of days; so does this. */
const MAX_DAYS = 366 * 100;

/**
 * Example: `nextUtcRun(cron.parse('0 9 * * 1-5'), new Date('2026-12-05T12:00:00Z'))` → 2026-12-07T09:00:00Z
 * (the Monday after that Saturday).
 */
export function nextUtcRun(fields: ParsedFields, after: Date): Date | undefined {
  const [seconds, minutes, hours, days, months, weekdays] = [fields.second, fields.minute, fields.hour, fields.dayOfMonth, fields.month, fields.dayOfWeek].map(plainSorted);
  if (!seconds || !minutes || !hours || !days || !months || !weekdays) return undefined;
  const start = Math.floor(after.getTime() / 1000) * 1000;
  const day = new Date(start);
  day.setUTCHours(0, 0, 0, 0);
  for (let i = 0; i < MAX_DAYS; i++, day.setUTCDate(day.getUTCDate() + 1)) {
    if (!months.includes(day.getUTCMonth() + 1) || !days.includes(day.getUTCDate()) || !weekdays.includes(day.getUTCDay())) continue;
    for (const hour of hours) {
      for (const minute of minutes) {
        for (const second of seconds) {
          const at = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), hour, minute, second);
          if (at > start) return new Date(at);
        }
      }
    }
  }
  return undefined;
}

/** The field's values in order, or undefined when it holds one of node-cron's day tokens (or nothing). */
function plainSorted(field: (number | string)[] | undefined): number[] | undefined {
  if (!field?.length || !field.every((v): v is number => Number.isInteger(v))) return undefined;
  return [...(field as number[])].sort((a, b) => a - b);
}
