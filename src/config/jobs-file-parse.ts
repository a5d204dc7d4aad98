/**
 * Reading a jobs file: YAML is parsed with `yaml`'s Document + LineCounter and every problem is located by
 * walking the document to its key path. JSON is parsed with `JSON.parse` (strict) and, since JSON is YAML,
 * located the same way.
 */
import nodePath from 'node:path';
import { Document, LineCounter, parseDocument, isMap, isScalar, isSeq } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import type { Segment } from './check-helpers.ts';
import { JobsFileError, type JobsFileProblem } from './jobs-file-error.ts';

export type Where = 'key' | 'value';
export type Locate = (path: Segment[], where: Where) => { line?: number; column?: number };

/**
 * Parses a jobs file's text (`.yaml`/`.yml` as YAML, `.json` as strict JSON) into a plain value and a
 * `locate` that finds the line of any key path. Throws a JobsFileError for syntax errors; returns the
 * problems found on the way (duplicate JSON keys) for the checker to add to.
 */
export function parseLocated(text: string, path: string): { value: unknown; problems: JobsFileProblem[]; locate: Locate } {
  const ext = nodePath.extname(path).toLowerCase();
  if (ext !== '.yaml' && ext !== '.yml' && ext !== '.json') {
    throw new JobsFileError(path, [
      { key: '', message: `unsupported file type "${ext || '(none)'}". Fix: name the file with .yaml, .yml or .json.` },
    ]);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lineCounter = new LineCounter();
  const problems: JobsFileProblem[] = [];
  let value: unknown;
  let doc: Document | undefined;

  if (ext === '.json') {
    try {
      value = JSON.parse(text);
    } catch (error) {
      const reason = (error as Error).message;
      const position = /position (\d+)/.exec(reason);
      const loc = position ? lineAt(text, Number(position[1])) : undefined;
      throw new JobsFileError(path, [
        { ...loc, key: '', message: `not valid JSON (${reason}). Fix: check commas, quotes and brackets there, or write the file as YAML (agent.config.yaml).` },
      ]);
    }
    // JSON is YAML: parse it again only to learn where each key is.
    const located = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    const duplicates = located.errors.filter((e) => e.code === 'DUPLICATE_KEY');
    if (located.errors.length === 0) doc = located;
    else if (duplicates.length === located.errors.length) {
      doc = located;
      for (const e of duplicates) {
        problems.push({
          ...toLineColumn(lineCounter, e.pos[0]),
          key: '',
          message: `a key appears twice in the same object; JSON would silently keep the last one. Fix: remove or merge the duplicate.`,
        });
      }
    }
  } else {
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length > 0) {
      // Syntax first: checking the content of a half-parsed document would only add noise.
      const seen = new Set<string>();
      for (const e of doc.errors) {
        const loc = toLineColumn(lineCounter, e.pos[0]);
        const id = `${loc.line}:${e.code}`;
        if (seen.has(id)) continue;
        seen.add(id);
        problems.push({ ...loc, key: '', message: `${yamlErrorMessage(e.code, e.message)}` });
      }
      throw new JobsFileError(path, problems);
    }
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      throw new JobsFileError(path, [
        { key: '', message: `the YAML cannot be read (${(error as Error).message}). Fix: quote values that start with * or & (e.g. schedule: "*/5 * * * *").` },
      ]);
    }
  }

  const locate: Locate = (segments, where) => (doc ? locateIn(doc, lineCounter, segments, where) : {});
  return { value, problems, locate };
}

function lineAt(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

function toLineColumn(lineCounter: LineCounter, offset: number): { line: number; column: number } {
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

function yamlErrorMessage(code: string, message: string): string {
  switch (code) {
    case 'TAB_AS_INDENT':
      return `a tab is used for indentation; YAML allows only spaces. Fix: replace the tabs at the start of this line with spaces.`;
    case 'DUPLICATE_KEY':
      return `a key appears twice in the same mapping. Fix: remove or merge the duplicate.`;
    case 'MULTIPLE_DOCS':
      return `the file holds more than one YAML document (a "---" line). Fix: keep a single document with one jobs: list.`;
    case 'BAD_ALIAS':
    case 'UNEXPECTED_TOKEN':
      if (/alias|anchor/i.test(message)) {
        return `YAML syntax error (${message}): a value starting with * is read as an alias. Fix: quote it, e.g. schedule: "*/5 * * * *".`;
      }
      return `YAML syntax error (${message}). Fix: check the indentation and quoting on this line; quote values that contain ": " or start with * & ! { [ @.`;
    default:
      return `YAML syntax error (${message}). Fix: check the indentation (spaces, aligned under the parent) and quoting on this line.`;
  }
}

function locateIn(doc: Document, lineCounter: LineCounter, segments: Segment[], where: Where): { line?: number; column?: number } {
  let node: unknown = doc.contents;
  let offset = rangeStart(node);
  for (const [i, segment] of segments.entries()) {
    const last = i === segments.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(segment));
      if (!pair) break;
      const keyOffset = rangeStart(pair.key);
      if (last && where === 'key') {
        offset = keyOffset ?? offset;
        break;
      }
      node = pair.value;
      offset = rangeStart(node) ?? keyOffset ?? offset;
    } else if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment];
      if (node === undefined) break;
      offset = rangeStart(node) ?? offset;
    } else break;
  }
  return offset === undefined ? {} : toLineColumn(lineCounter, offset);
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as YamlNode | null | undefined)?.range;
  return Array.isArray(range) ? range[0] : undefined;
}

