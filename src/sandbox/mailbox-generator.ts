/**
 * Deterministic synthetic mail. `generateMailbox(n, seed, now)` always yields
 * the same subjects, senders and relative dates for the same seed; only the
 * dates move with `now`. Bodies are short so 50,000 messages stay small.
 */

export interface Address {
  name: string;
  address: string;
}

export interface GeneratedMessage {
  subject: string;
  bodyContentType: 'html' | 'text';
  body: string;
  from: Address;
  to: Address[];
  cc: Address[];
  receivedDateTime: string;
  importance: 'low' | 'normal' | 'high';
  isRead: boolean;
  hasAttachments: boolean;
  categories: string[];
  flagStatus: 'notFlagged' | 'flagged' | 'complete';
  /** What the generator meant it to be; handy in tests. */
  kind: 'newsletter' | 'invoice' | 'urgent' | 'colleague' | 'notification';
}

/** Small, fast, seedable PRNG (mulberry32). */
export function createRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rnd: () => number, list: readonly T[]): T {
  return list[Math.floor(rnd() * list.length)] as T;
}

const NEWSLETTERS: readonly Address[] = [
  { name: 'Example News Weekly', address: 'weekly@news.example.com' },
  { name: 'Example News Deals', address: 'deals@mail.news.example.com' },
  { name: 'Example News Tech Digest', address: 'digest@tech.news.example.com' },
  { name: 'Example News Daily Briefing', address: 'daily@news.example.com' },
];
const NEWSLETTER_TOPICS = [
  'Your weekly roundup', 'This week in tech', 'Deals of the week: up to 40% off', 'Morning briefing',
  '5 stories you missed', 'Product updates for March', 'The best of the month', 'Weekend reading list',
];
const VENDORS: readonly Address[] = [
  { name: 'Vendor Billing', address: 'billing@vendor.example' },
  { name: 'Fabrikam Accounts', address: 'accounts@fabrikam.example' },
  { name: 'Northwind Invoicing', address: 'invoices@northwind.example' },
];
const COLLEAGUES: readonly Address[] = [
  { name: 'Bob Jones', address: 'bob@contoso.test' },
  { name: 'Carol Smith', address: 'carol@contoso.test' },
  { name: 'Dan Brown', address: 'dan@contoso.test' },
  { name: 'Erin Patel', address: 'erin@contoso.test' },
  { name: 'Frank Miller', address: 'frank@contoso.test' },
];
const COLLEAGUE_SUBJECTS = [
  'Lunch on Thursday?', 'Notes from the planning meeting', 'Q3 roadmap draft', 'Re: design review',
  'Can you review my PR?', 'Offsite agenda', 'Holiday hours update', 'Team photo', 'Quick question about the budget',
  'Re: customer escalation follow-up', 'Slides for Monday', 'Welcome our new team member',
];
const URGENT_SUBJECTS = [
  'URGENT: server certificate expires tomorrow', 'Urgent: please approve the purchase order',
  'urgent - customer outage in EU region', 'Re: URGENT contract signature needed today',
];
const NOTIFICATIONS: readonly Address[] = [
  { name: 'Contoso IT', address: 'it-noreply@contoso.test' },
  { name: 'Calendar', address: 'calendar-noreply@contoso.test' },
];
const NOTIFICATION_SUBJECTS = ['Your password expires in 14 days', 'Scheduled maintenance this weekend', 'New sign-in to your account'];

const LOREM = 'Please find the details below. Let me know if anything is unclear or if you need more time to look into it. '
  + 'We will follow up next week with the remaining items and an updated timeline.';

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function htmlBody(text: string): string {
  return `<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head><body><p>${escapeHtml(text)}</p></body></html>`;
}

/**
 * Generates `n` inbox messages, newest first not guaranteed, spread over the
 * last 60 days before `now`.
 *
 * @example generateMailbox(300, 42, Date.now()).filter(m => m.kind === 'invoice')
 */
export function generateMailbox(n: number, seed = 20260412, now: number = Date.now()): GeneratedMessage[] {
  const rnd = createRandom(seed);
  const out: GeneratedMessage[] = [];
  const recipient: Address = { name: 'Alice Example', address: 'alice@contoso.test' };
  const spanMs = 60 * 24 * 3600 * 1000;
  for (let i = 0; i < n; i++) {
    const r = rnd();
    const received = new Date(now - Math.floor(rnd() * spanMs) - 60_000);
    received.setUTCMilliseconds(0);
    let msg: GeneratedMessage;
    if (r < 0.35) {
      const from = pick(rnd, NEWSLETTERS);
      const subject = `${pick(rnd, NEWSLETTER_TOPICS)} #${100 + (i % 900)}`;
      msg = {
        kind: 'newsletter', subject, from, to: [recipient], cc: [], bodyContentType: 'html',
        body: htmlBody(`${subject}. Read the full stories on our website. You receive this because you subscribed. Unsubscribe any time.`),
        importance: 'normal', isRead: rnd() < 0.3, hasAttachments: false, categories: [], flagStatus: 'notFlagged',
        receivedDateTime: received.toISOString().replace('.000Z', 'Z'),
      };
    } else if (r < 0.5) {
      const from = pick(rnd, VENDORS);
      const number = `INV-${received.getUTCFullYear()}-${String(1000 + Math.floor(rnd() * 9000)).padStart(4, '0')}`;
      const subject = rnd() < 0.8 ? `Invoice ${number}` : `Your invoice ${number} is available`;
      msg = {
        kind: 'invoice', subject, from, to: [recipient], cc: [], bodyContentType: 'html',
        body: htmlBody(`Dear customer, attached is invoice ${number}. Amount due: EUR ${(rnd() * 2000 + 20).toFixed(2)}. Payment terms: 30 days.`),
        importance: 'normal', isRead: rnd() < 0.4, hasAttachments: rnd() < 0.85, categories: [], flagStatus: 'notFlagged',
        receivedDateTime: received.toISOString().replace('.000Z', 'Z'),
      };
    } else if (r < 0.58) {
      const from = pick(rnd, COLLEAGUES);
      const subject = pick(rnd, URGENT_SUBJECTS);
      msg = {
        kind: 'urgent', subject, from, to: [recipient], cc: rnd() < 0.5 ? [pick(rnd, COLLEAGUES)] : [], bodyContentType: 'text',
        body: `Hi Alice,\n\n${subject}. ${LOREM}\n\nThanks,\n${from.name}`,
        importance: rnd() < 0.7 ? 'high' : 'normal', isRead: rnd() < 0.2, hasAttachments: rnd() < 0.2, categories: [], flagStatus: 'notFlagged',
        receivedDateTime: received.toISOString().replace('.000Z', 'Z'),
      };
    } else if (r < 0.93) {
      const from = pick(rnd, COLLEAGUES);
      const subject = pick(rnd, COLLEAGUE_SUBJECTS);
      msg = {
        kind: 'colleague', subject, from, to: [recipient], cc: rnd() < 0.3 ? [pick(rnd, COLLEAGUES)] : [],
        bodyContentType: rnd() < 0.5 ? 'html' : 'text', body: '',
        importance: rnd() < 0.1 ? 'high' : rnd() < 0.1 ? 'low' : 'normal', isRead: rnd() < 0.5, hasAttachments: rnd() < 0.25,
        categories: rnd() < 0.1 ? ['Blue category'] : [], flagStatus: rnd() < 0.05 ? 'flagged' : 'notFlagged',
        receivedDateTime: received.toISOString().replace('.000Z', 'Z'),
      };
      const text = `Hi Alice, ${subject.replace(/^Re: /, '').toLowerCase()}. ${LOREM} Best, ${from.name}`;
      msg.body = msg.bodyContentType === 'html' ? htmlBody(text) : text;
    } else {
      const from = pick(rnd, NOTIFICATIONS);
      const subject = pick(rnd, NOTIFICATION_SUBJECTS);
      msg = {
        kind: 'notification', subject, from, to: [recipient], cc: [], bodyContentType: 'html',
        body: htmlBody(`${subject}. This is an automated message, please do not reply.`),
        importance: 'low', isRead: rnd() < 0.6, hasAttachments: false, categories: [], flagStatus: 'notFlagged',
        receivedDateTime: received.toISOString().replace('.000Z', 'Z'),
      };
    }
    out.push(msg);
  }
  return out;
}

/** Plain text of a body (tags stripped, entities decoded) for bodyPreview. */
export function textOf(contentType: 'html' | 'text', content: string): string {
  if (contentType === 'text') return content.replace(/\s+/g, ' ').trim();
  return content
    .replace(/<head[\s\S]*?<\/head>/gi, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}
