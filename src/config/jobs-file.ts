/**
 * The jobs file (`agent.config.yaml`, or `.json`): its types, and loading it.
 *
 * A bad file is refused with every problem at once, each with its line, its key path
 * (`jobs[0].rules[1].match.subjectMatches`) and a fix. The checkers are written by hand rather than with zod
 * because every message here is custom ("did you mean", "this key belongs under match:", cron and regex
 * reasons) and zod's union errors would have to be rewritten one by one anyway.
 *
 * Reading and locating: src/config/jobs-file-parse.ts. Jobs: src/config/jobs-file-checker.ts. Inbox rules:
 * src/config/inbox-rules-checker.ts, which hands each match key and action to its definition
 * (src/jobs/rules/keys/, src/jobs/rules/actions/). Calendar rules: src/config/calendar-rules-schema.ts.
 */
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import nodePath from 'node:path';
import type { Action } from '../jobs/rules/actions/index.ts';
import type { MatchSpec } from '../jobs/rules/keys/index.ts';
import { formatPath } from './check-helpers.ts';
import type { CalendarRulesJob } from './calendar-rules-schema.ts';
import { JobsFileError, README, type JobsFileProblem } from './jobs-file-error.ts';
import { Checker } from './jobs-file-checker.ts';
import { parseLocated, type Locate } from './jobs-file-parse.ts';

export type { Action } from '../jobs/rules/actions/index.ts';
export type { MatchSpec } from '../jobs/rules/keys/index.ts';
export type { Importance } from '../jobs/rules/keys/importance.ts';
export { SUBJECT_MATCHES_FLAGS } from '../jobs/rules/keys/subject-matches.ts';
export { formatPath, suggest } from './check-helpers.ts';
export { JobsFileError, formatProblem, type JobsFileProblem } from './jobs-file-error.ts';
export { JOB_TYPES } from './jobs-file-checker.ts';

export interface Rule {
  name: string;
  match: MatchSpec;
  actions: Action[];
  stop: boolean;
}

export interface InboxRulesJob {
  name: string;
  type: 'inbox-rules';
  schedule: string;
  folder: string;
  backfill: boolean;
  rules: Rule[];
}

export interface AgendaDigestJob {
  name: string;
  type: 'agenda-digest';
  schedule: string;
  sendTo: string;
}

export interface CustomJob {
  name: string;
  type: 'custom';
  /** Absolute path, resolved against the jobs file's directory. */
  module: string;
  schedule: string;
  options?: Record<string, unknown>;
}

export type JobSpec = InboxRulesJob | AgendaDigestJob | CalendarRulesJob | CustomJob;
export type { CalendarRulesJob } from './calendar-rules-schema.ts';

export interface JobsFile {
  /** Absolute path of the file. */
  path: string;
  /** Canonical IANA name (`europe/berlin` becomes `Europe/Berlin`). */
  timezone?: string;
  jobs: JobSpec[];
}

/**
 * Reads and validates a jobs file; a missing file, a bad file, or a custom job
 * whose module does not exist is refused with a JobsFileError listing every problem.
 *
 * @example const file = await loadJobsFile(config.agentConfigPath);
 */
export async function loadJobsFile(path: string): Promise<JobsFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message =
      code === 'ENOENT'
        ? `the jobs file does not exist (looked for ${nodePath.resolve(path)}). Fix: create it; copy agent.config.yaml from the repository and edit it (${README}), or set AGENT_CONFIG to the path of yours.`
        : `the jobs file cannot be read (${code ?? String(error)}). Fix: check that the file is readable by the user running the agent, or set AGENT_CONFIG to another path.`;
    throw new JobsFileError(path, [{ key: '', message }]);
  }
  const { file, problems, locate } = checkText(text, path);
  for (const [index, job] of (file?.jobs ?? []).entries()) {
    if (job.type !== 'custom') continue;
    try {
      await access(job.module, constants.R_OK);
    } catch {
      problems.push({
        ...locate(['jobs', index, 'module'], 'value'),
        key: formatPath(['jobs', index, 'module']),
        message: `the module ${job.module} does not exist or cannot be read. Fix: write the path relative to the folder of ${nodePath.basename(path)}, e.g. ./jobs/my-job.js.`,
      });
    }
  }
  if (problems.length > 0 || !file) throw new JobsFileError(path, sortProblems(problems));
  return file;
}

/**
 * Parses and validates a jobs file's text; `.yaml`/`.yml` is YAML, `.json` is JSON.
 * Pure but for `path.resolve` of a custom job's `module`.
 *
 * @example parseJobsFile('jobs: []', 'agent.config.yaml') // { path: '/…/agent.config.yaml', jobs: [] }
 */
export function parseJobsFile(text: string, path: string): JobsFile {
  const { file, problems } = checkText(text, path);
  if (problems.length > 0 || !file) throw new JobsFileError(path, sortProblems(problems));
  return file;
}

function sortProblems(problems: JobsFileProblem[]): JobsFileProblem[] {
  const line = (p: JobsFileProblem) => p.line ?? Number.POSITIVE_INFINITY;
  return [...problems].sort((a, b) => line(a) - line(b) || (a.column ?? 0) - (b.column ?? 0));
}

/** Parses and checks; throws for syntax errors, returns the content's problems so loadJobsFile can add its own. */
function checkText(text: string, path: string): { file?: JobsFile; problems: JobsFileProblem[]; locate: Locate } {
  const { value, problems, locate } = parseLocated(text, path);
  const checker = new Checker(path, locate);
  const file = checker.file(value);
  return { file, problems: [...problems, ...checker.problems], locate };
}
