/**
 * The rule engine's view of a Graph message: what match keys read. Built once per message from the delta
 * page (toMessageView); keys that need more than delta gives (headers, attachments) read what the run
 * fetched for the candidates into the same view.
 */
import type { Importance } from './keys/importance.ts';

export interface MessageView {
  id: string;
  subject: string;
  /** Sender address as Graph gives it (`from.emailAddress.address`). */
  from?: string;
  toRecipients: string[];
  ccRecipients: string[];
  receivedDateTime: string;
  hasAttachments: boolean;
  importance: Importance;
  isRead: boolean;
  categories: string[];
  /** Whole body, HTML stripped, whitespace collapsed; undefined when the body was not fetched. */
  bodyText?: string;
  flagged: boolean;
  /** internetMessageHeaders; undefined when not fetched (only for candidates of a rule with `header`). */
  headers?: { name: string; value: string }[];
  /** Attachments (no bytes); undefined when not fetched (only for candidates of a rule with an attachment key). */
  attachments?: AttachmentInfo[];
}

export interface AttachmentInfo {
  name: string;
  contentType: string;
  size: number;
  isInline: boolean;
}

/**
 * Builds the engine's view of a Graph message (v1.0 `message` resource JSON).
 *
 * @example toMessageView(await graph.get(`/me/messages/${id}?$select=…,body`))
 */
export function toMessageView(graphMessage: any): MessageView {
  const m = graphMessage ?? {};
  const addresses = (list: unknown): string[] =>
    Array.isArray(list)
      ? list.map((r) => r?.emailAddress?.address).filter((a): a is string => typeof a === 'string' && a !== '')
      : [];
  const importance: string = typeof m.importance === 'string' ? m.importance.toLowerCase() : 'normal';
  const from = m.from?.emailAddress?.address;
  let bodyText: string | undefined;
  if (m.body && typeof m.body.content === 'string') {
    const html = typeof m.body.contentType === 'string' && m.body.contentType.toLowerCase() === 'html';
    bodyText = normalizeSpace(html ? stripHtml(m.body.content) : m.body.content);
  }
  return {
    id: String(m.id ?? ''),
    subject: typeof m.subject === 'string' ? m.subject : '',
    ...(typeof from === 'string' && from !== '' ? { from } : {}),
    toRecipients: addresses(m.toRecipients),
    ccRecipients: addresses(m.ccRecipients),
    receivedDateTime: typeof m.receivedDateTime === 'string' ? m.receivedDateTime : '',
    hasAttachments: m.hasAttachments === true,
    importance: importance === 'low' || importance === 'high' ? importance : 'normal',
    isRead: m.isRead === true,
    categories: Array.isArray(m.categories) ? m.categories.filter((c: unknown): c is string => typeof c === 'string') : [],
    ...(bodyText !== undefined ? { bodyText } : {}),
    flagged: m.flag?.flagStatus === 'flagged',
  };
}

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };
const BLOCK_TAGS = /^(?:br|p|div|tr|td|th|li|ul|ol|table|h[1-6]|hr|blockquote|pre|section|article|header|footer|title)$/i;

/**
 * Text of an HTML body: <script>, <style>, <head> content and comments dropped,
 * tags removed (block tags become a line break so words do not run together),
 * then entities decoded once (`&amp;lt;` is the text `&lt;`).
 *
 * @example stripHtml('<p>Tom &amp; Jerry</p><p>2 &lt; 3</p>') // '\nTom & Jerry\n\n2 < 3\n'
 */
export function stripHtml(html: string): string {
  const text = html
    .replace(/<!--[\s\S]*?(?:-->|$)/g, '')
    .replace(/<(script|style|head|template)\b[^>]*>[\s\S]*?(?:<\/\1\s*>|$)/gi, ' ')
    .replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, '$1')
    .replace(/<[!?][^>]*>/g, '')
    .replace(/<\/?([a-zA-Z][a-zA-Z0-9:-]*)(?:[^>"']|"[^"]*"|'[^']*')*>/g, (_tag, name: string) => (BLOCK_TAGS.test(name) ? '\n' : ''))
    // A tag with an unbalanced quote survives the pattern above; drop it up to its first '>'.
    .replace(/<\/?[a-zA-Z][^>]*>/g, '');
  return decodeEntities(text);
}

function decodeEntities(text: string): string {
  return text.replace(/&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]+);/g, (entity, body: string) => {
    if (body.startsWith('#')) {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      const valid = code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff);
      return valid ? String.fromCodePoint(code) : '\uFFFD';
    }
    return NAMED_ENTITIES[body.toLowerCase()] ?? entity;
  });
}

export function normalizeSpace(s: string): string {
  return s.replace(/[\s\u00a0]+/g, ' ').trim();
}

