/**
 * Deterministic synthetic mail. `generateMailbox(n, seed, now)` always yields
 * the same subjects, senders and relative dates for the same seed; only the
 * dates move with `now`. Bodies are short so 50,000 messages stay small.
 */

export interface Address {
  name: string;
  address: string;
}

/** One internet message header as Graph returns it in `internetMessageHeaders` (docs/microsoft-notes.md). */
export interface MessageHeader {
  name: string;
  value: string;
}

/**
 * An attachment as it arrives: bytes given (`content`, a Buffer or base64) or generated on demand from
 * `generated` (a seed), so a 50,000-message mailbox keeps no attachment bytes in memory.
 */
export interface AttachmentInput {
  name: string;
  contentType: string;
  isInline?: boolean;
  contentId?: string;
  content?: Buffer | string;
  generated?: number;
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
  /** Headers beyond the ones every message gets (List-Id on newsletters, Auto-Submitted on notifications). */
  internetMessageHeaders?: MessageHeader[];
  attachments?: AttachmentInput[];
  replyTo?: Address[];
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
  const extra = createRandom(seed ^ 0x5bd1e995); // headers and attachments: the main sequence stays as it was
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
    out.push(decorate(msg, extra()));
  }
  return out;
}

const LIST_HOME: Record<string, string> = {
  'news.example.com': 'https://news.example.com', 'mail.news.example.com': 'https://deals.news.example.com',
  'tech.news.example.com': 'https://tech.news.example.com',
};
const INLINE_LOGO = 'image001.png';

/**
 * Adds what real mail of each kind carries: list headers on newsletters (RFC 2369/2919 List-Id,
 * List-Unsubscribe, RFC 8058 List-Unsubscribe-Post), Auto-Submitted (RFC 3834) on notifications, files on
 * messages marked hasAttachments, inline images on some HTML mail (which leave hasAttachments false, as in
 * Graph). `r` comes from a PRNG of its own, so subjects, senders and dates stay what they were for a seed.
 */
function decorate(msg: GeneratedMessage, r: number): GeneratedMessage {
  const [local, domain = 'example.com'] = msg.from.address.split('@') as [string, string?];
  const seed = Math.floor(r * 1_000_000);
  if (msg.kind === 'newsletter') {
    const home = LIST_HOME[domain] ?? `https://${domain}`;
    msg.internetMessageHeaders = [
      { name: 'List-Id', value: `${msg.from.name} <${local}.${domain}>` },
      { name: 'List-Unsubscribe', value: `<${home}/unsubscribe?list=${local}&u=${seed}>, <mailto:unsubscribe@${domain}?subject=unsubscribe>` },
      { name: 'List-Unsubscribe-Post', value: 'List-Unsubscribe=One-Click' },
      { name: 'Precedence', value: 'bulk' },
    ];
    if (r < 0.5) addInlineLogo(msg, seed);
  } else if (msg.kind === 'notification') {
    msg.internetMessageHeaders = [
      { name: 'Auto-Submitted', value: 'auto-generated' },
      { name: 'X-Auto-Response-Suppress', value: 'All' },
    ];
  } else if (msg.kind === 'invoice' && msg.hasAttachments) {
    const number = /INV-\d{4}-\d{4}/.exec(msg.subject)?.[0] ?? `INV-${seed}`;
    msg.attachments = [{ name: `Invoice ${number}.pdf`, contentType: 'application/pdf', generated: seed }];
    if (r < 0.2) msg.attachments.push({ name: 'Terms and conditions.pdf', contentType: 'application/pdf', generated: seed + 1 });
  } else if (msg.hasAttachments) {
    const files: AttachmentInput[] = [
      { name: 'Q3 roadmap.docx', contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', generated: seed },
      { name: 'budget.xlsx', contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', generated: seed },
      { name: 'team photo.jpg', contentType: 'image/jpeg', generated: seed },
      { name: 'notes.txt', contentType: 'text/plain', generated: seed },
    ];
    msg.attachments = [files[Math.floor(r * files.length)]!];
  }
  if (msg.kind === 'colleague' && msg.bodyContentType === 'html' && r > 0.8) addInlineLogo(msg, seed);
  return msg;
}

/** An inline logo the HTML body shows by its Content-ID, as signatures and newsletters do. */
function addInlineLogo(msg: GeneratedMessage, seed: number): void {
  const contentId = `${INLINE_LOGO}@01DC${seed.toString(16).padStart(8, '0').toUpperCase()}`;
  msg.body = msg.body.replace('<body>', `<body><img src="cid:${contentId}" alt="logo">`);
  (msg.attachments ??= []).push({ name: INLINE_LOGO, contentType: 'image/png', isInline: true, contentId, generated: seed });
}

const PNG_1X1 = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

/** The bytes of a generated attachment: the same for the same name, type and seed. */
export function generatedAttachmentBytes(name: string, contentType: string, seed: number): Buffer {
  if (contentType === 'image/png') return PNG_1X1;
  if (contentType === 'application/pdf') {
    return Buffer.from(`%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% ${name} (sandbox ${seed})\ntrailer << /Root 1 0 R >>\n%%EOF\n`);
  }
  const line = `${name}: sandbox attachment ${seed}\n`;
  const text = Buffer.from(line.repeat(1 + (seed % 40)));
  if (contentType === 'image/jpeg') return Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), text, Buffer.from([0xff, 0xd9])]);
  return text;
}

/** The contacts a seeded mailbox starts with: some colleagues and one vendor, never the newsletters. */
export function generateContacts(upn: string): { displayName: string; emailAddresses: Address[] }[] {
  const people = upn.startsWith('alice@') ? [...COLLEAGUES.slice(0, 3), VENDORS[0]!] : [COLLEAGUES[1]!];
  return people.map((p) => ({ displayName: p.name, emailAddresses: [{ name: p.name, address: p.address }] }));
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
