import { describe } from '../../../config/check-helpers.ts';
import { type KeyDefinition } from '../definition.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

/** `olderThanDays: 30`: received at least that many days before the run's start (boundary included). */
export const olderThanDays: KeyDefinition<number> = {
  check: (raw, at, t) => {
    if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0) return raw;
    t.add(at, `olderThanDays must be a whole number of days, 0 or more, but it is ${describe(raw)}. Fix: e.g. olderThanDays: 30.`);
    return undefined;
  },
  fields: ['receivedDateTime'],
  test: (value, msg, env) => {
    const received = Date.parse(msg.receivedDateTime);
    return !Number.isNaN(received) && received <= env.runStart.getTime() - value * DAY_MS;
  },
  explain: (value, msg, matched) => `olderThanDays ${value} ${matched ? 'matched' : 'did not match'} received ${msg.receivedDateTime || '(unknown)'}`,
  permission: undefined,
  readme: { example: 'olderThanDays: 30', text: 'received at least that many days before the run' },
};
