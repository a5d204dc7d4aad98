import type { Store } from '../store/index.ts';
import type { LastRun } from './runner.ts';

/** The store key of a job's last run record, which JobRunner writes at the end of every run. */
export function lastRunKey(job: string): string {
  return `run:${job}:last`;
}

/** A job's last run, read without the runner (and the job modules it loads): `status` needs only this. */
export function lastRunOf(store: Store, job: string): Promise<LastRun | undefined> {
  return store.get<LastRun>(lastRunKey(job));
}
