/** A jobs file refused: every problem with its line, key path and fix. */
import { AgentError } from './errors.ts';

/** Where the jobs file's keys are described; every fix may point there. */
export const README = 'README "Writing rules"';

export interface JobsFileProblem {
  line?: number;
  column?: number;
  /** Key path such as `jobs[0].rules[1].match.subjectMatches`; '' for the file as a whole. */
  key: string;
  /** What is wrong, then `Fix: …`. */
  message: string;
}

export class JobsFileError extends AgentError {
  declare readonly code: 'JOBS_FILE_INVALID';
  readonly problems: JobsFileProblem[];
  /** The path as given, used in the message. */
  readonly path: string;

  constructor(path: string, problems: JobsFileProblem[]) {
    const n = problems.length;
    const lines = problems.map((p) => `  ${formatProblem(path, p)}`);
    super('JOBS_FILE_INVALID', `The jobs file ${path} is invalid (${n} problem${n === 1 ? '' : 's'}):\n${lines.join('\n')}`, {
      remedy: `Fix ${n === 1 ? 'it' : 'them'} in ${path}; ${README} describes every key.`,
      status: 500,
    });
    this.name = 'JobsFileError';
    this.problems = problems;
    this.path = path;
  }
}

/** `agent.config.yaml:12 jobs[0].name: …` */
export function formatProblem(path: string, p: JobsFileProblem): string {
  const where = p.line === undefined ? path : `${path}:${p.line}`;
  return p.key ? `${where} ${p.key}: ${p.message}` : `${where}: ${p.message}`;
}
