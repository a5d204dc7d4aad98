/**
 * Another process holding a store lock, for the lock tests: takes LOCK_NAME on LOCK_URL (redis:// or postgresql://;
 * a Redis lease of LEASE_MS), says "held", then keeps it (renewing it, for Redis) until it is killed.
 */
import { writeSync } from 'node:fs';
import { postgresLock, redisLock } from '../../src/store/index.ts';

const url = process.env.LOCK_URL!;
const lock = url.startsWith('redis') ? redisLock(url, { leaseMs: Number(process.env.LEASE_MS ?? '1000') }) : postgresLock(url);
await lock.acquire(process.env.LOCK_NAME ?? 'test', { waitMs: 10_000 });
writeSync(1, 'held\n');
setInterval(() => undefined, 60_000);
