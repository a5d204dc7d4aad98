import { describe, isObject, type Segment } from '../../../config/check-helpers.ts';
import { listOf, type KeyDefinition, type RuleCheckTools } from '../definition.ts';
import type { AttachmentInfo, MessageView } from '../message.ts';

/** `attachmentName` and `attachmentType`: a list of patterns, and whether inline attachments (images in the body) count. */
export interface AttachmentMatch {
  patterns: string[];
  inline: boolean;
}

function attachmentsOf(key: string, msg: MessageView, inline: boolean): AttachmentInfo[] {
  if (msg.attachments === undefined) {
    throw new Error(`Rule engine: ${key} needs the message's attachments, but message ${msg.id} was fetched without them. Fetch them for every candidate of a rule that uses ${key}.`);
  }
  return inline ? msg.attachments : msg.attachments.filter((a) => !a.isInline);
}

/** `*.pdf`, `invoice-??.xlsx`: `*` any run of characters, `?` one; the whole name, case-insensitive. */
export function globRegex(glob: string): RegExp {
  const body = glob.trim().replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'is');
}

/** `pdf`, `.pdf`: an extension; `application/pdf`, `image/*`: a MIME type. */
export function typeMatches(pattern: string, a: AttachmentInfo): boolean {
  const p = pattern.trim().toLowerCase();
  if (p.includes('/')) {
    const type = a.contentType.toLowerCase().split(';')[0]!.trim();
    return p.endsWith('/*') ? type.startsWith(p.slice(0, -1)) : type === p;
  }
  return a.name.toLowerCase().endsWith(`.${p.replace(/^\./, '')}`);
}

/**
 * The two keys share this definition: `attachmentName: "*.pdf"` or `attachmentType: [pdf, image/*]`, a text or a
 * list, or `{ names|types: …, inline: true }` to count inline attachments too. Attachments are not in delta: they
 * are listed without their bytes (`$select=name,contentType,size,isInline`) for the messages still candidates.
 */
function attachmentKey(key: 'attachmentName' | 'attachmentType', listKey: 'names' | 'types', test: (pattern: string, a: AttachmentInfo) => boolean, readme: { example: string; text: string }): KeyDefinition<AttachmentMatch> {
  const check = (raw: unknown, at: Segment[], t: RuleCheckTools): AttachmentMatch | undefined => {
    let list: unknown = raw;
    let inline = false;
    let listAt = at;
    if (isObject(raw)) {
      const unknown = Object.keys(raw).filter((k) => k !== listKey && k !== 'inline');
      if (unknown.length > 0 || raw[listKey] === undefined) {
        t.add(unknown.length > 0 ? [...at, unknown[0]!] : at, `${key} as a mapping takes ${listKey}: and inline: (true counts images inside the body too). Fix: e.g. ${key}: { ${listKey}: [${readme.example.split(': ')[1]}], inline: true }, or just ${readme.example}.`, unknown.length > 0 ? 'key' : 'value');
        return undefined;
      }
      if (raw.inline !== undefined && typeof raw.inline !== 'boolean') {
        t.add([...at, 'inline'], `inline must be true or false, but it is ${describe(raw.inline)}. Fix: inline: true counts attachments shown inside the body (pictures); leave it out to ignore them.`);
        return undefined;
      }
      inline = raw.inline === true;
      list = raw[listKey];
      listAt = [...at, listKey];
    }
    const patterns = t.textList(list, listAt, key);
    return patterns && { patterns: patterns.map((p) => p.trim()), inline };
  };
  return {
    check,
    fields: ['hasAttachments'],
    fetch: 'attachments',
    test: (value, msg) => attachmentsOf(key, msg, value.inline).some((a) => value.patterns.some((p) => test(p, a))),
    explain: (value, msg, matched) => {
      const names = attachmentsOf(key, msg, value.inline).map((a) => (key === 'attachmentType' ? `${a.name} (${a.contentType})` : a.name));
      return `${key} ${value.patterns.join(', ')} ${matched ? 'matched' : 'did not match'} ${names.length ? `attachments ${names.join(', ')}` : `(no ${value.inline ? '' : 'non-inline '}attachments)`}`;
    },
    permission: undefined,
    readme,
  };
}

export const attachmentName = attachmentKey('attachmentName', 'names', (glob, a) => globRegex(glob).test(a.name), {
  example: 'attachmentName: "*.pdf"',
  text: 'an attachment\'s file name by glob (`*`, `?`; a list means any of; case-insensitive); inline pictures only with `{ names: […], inline: true }`',
});
export const attachmentType = attachmentKey('attachmentType', 'types', typeMatches, {
  example: 'attachmentType: [pdf, image/*]',
  text: 'an attachment\'s extension (`pdf`) or MIME type (`application/pdf`, `image/*`); inline pictures only with `{ types: […], inline: true }`',
});
