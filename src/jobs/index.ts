export { JobRunner, type JobRunResult, type LastRun, type JobRunnerDeps } from './runner.ts';
export { Scheduler, nextRunOf } from './scheduler.ts';
export { fireClaims } from './lock.ts';
export type { JobContext, ActionRecord, JobStore } from './context.ts';
export { planActions, toMessageView, needsBody, selectFor } from './rules.ts';
