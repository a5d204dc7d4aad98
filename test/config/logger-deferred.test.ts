import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/config/logger.ts';

const pinoLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((file) => /[\\/]node_modules[\\/]pino[\\/]/.test(file));

test('a logger loads pino with its first line at an enabled level; lines below it and children cost nothing before', () => {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const log = createLogger({ level: 'warn', destination: destination as never });
  const auth = log.child({ component: 'auth' });
  const run = auth.child({ job: 'triage' });
  log.info('dropped');
  run.debug({ token: 'x' }, 'dropped too');
  assert.equal(log.level, 'warn');
  assert.equal(run.isLevelEnabled('info'), false);
  assert.equal(run.isLevelEnabled('error'), true);
  assert.equal(pinoLoaded(), false, 'pino was loaded for lines below the level');
  assert.equal(lines.length, 0);

  run.warn({ refresh_token: 'secret-value' }, 'kept');
  log.error('also kept');
  auth.info('still dropped');
  assert.equal(pinoLoaded(), true);
  assert.equal(lines.length, 2, JSON.stringify(lines));
  assert.deepEqual({ ...lines[0], time: undefined }, { level: 'warn', component: 'auth', job: 'triage', refresh_token: '[redacted]', msg: 'kept', time: undefined });
  assert.equal(lines[1]!.msg, 'also kept');
  assert.equal(lines[1]!.component, undefined);
});
