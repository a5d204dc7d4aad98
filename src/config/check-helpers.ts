/**
 * Small pure helpers the jobs-file checkers share (src/config/jobs-file-checker.ts, the rule registry's
 * definitions in src/jobs/rules/, src/config/calendar-rules-schema.ts through CheckTools): how a value is
 * described in a message, "did you mean", key paths, addresses and folder paths.
 */

export type Segment = string | number;
export type Obj = Record<string, unknown>;

export function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** How a value is named in a problem: `the text "x"`, `a list`, `number 3`, `nothing`. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the text ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

export function isAddress(s: string): boolean {
  return /^[^\s@]+@[^\s@]+$/.test(s);
}

/** Checks a folder path for `moveTo`/`copyTo`/`folder`; returns the reason it is bad, if it is. */
export function folderPathProblem(p: string): string | undefined {
  if (p.trim() === '') return 'the folder path is empty';
  if (p.startsWith('/') || p.endsWith('/')) return `the folder path ${JSON.stringify(p)} starts or ends with "/"`;
  if (p.split('/').some((s) => s.trim() === '')) return `the folder path ${JSON.stringify(p)} has an empty level ("//")`;
  return undefined;
}

/** `jobs[0].rules[1].match.subjectMatches` */
export function formatPath(segments: Segment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(s)) out += out ? `.${s}` : s;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** Closest candidate by edit distance, or one that differs only in case. */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  const lower = input.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    if (c.toLowerCase() === lower) return c;
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(input.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = row;
  }
  return prev[b.length]!;
}
