import type { MessageHeader } from './mailbox-generator.ts';
import type { StoredMessage } from './mailbox-store.ts';

/**
 * `internetMessageHeaders` of a message: the RFC 5322 headers every received message has (Received hops,
 * From, To, Subject, Date, Message-ID, MIME headers), built from the message's own fields, then the ones it
 * arrived with (List-Id, List-Unsubscribe, Auto-Submitted, In-Reply-To…). Graph returns the property only
 * when `$select` names it (docs/microsoft-notes.md, "Headers, attachments, contacts, drive, reply").
 * A draft has none.
 */
export function internetMessageHeaders(m: StoredMessage): MessageHeader[] {
  if (m.isDraft) return [];
  const domain = m.from.address.split('@')[1] ?? 'mail.example';
  const received = Date.parse(m.receivedDateTime);
  const sent = Date.parse(m.sentDateTime);
  const list = (a: { name: string; address: string }[]) => a.map((x) => (x.name && x.name !== x.address ? `${x.name} <${x.address}>` : x.address)).join(', ');
  const headers: MessageHeader[] = [
    {
      name: 'Received',
      value: `from SANDBOXPR01MB0001.eurprd01.prod.exchangelabs.com (2603:10a6:20b:1::1) by SANDBOXPR01MB0002.eurprd01.prod.exchangelabs.com with HTTPS; ${rfc5322Date(received)}`,
    },
    {
      name: 'Received',
      value: `from mail.${domain} (192.0.2.25) by SANDBOXPR01MB0001.eurprd01.prod.exchangelabs.com (10.0.0.1) with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7000.1; ${rfc5322Date(received - 2000)}`,
    },
    { name: 'Authentication-Results', value: `spf=pass (sender IP is 192.0.2.25) smtp.mailfrom=${domain}; dkim=pass (signature was verified) header.d=${domain};dmarc=pass action=none header.from=${domain};` },
    { name: 'From', value: list([m.from]) },
    { name: 'To', value: list(m.to) },
    ...(m.cc.length ? [{ name: 'Cc', value: list(m.cc) }] : []),
    { name: 'Subject', value: m.subject },
    { name: 'Thread-Topic', value: m.subject.replace(/^((re|fw|fwd):\s*)+/i, '') },
    { name: 'Date', value: rfc5322Date(sent) },
    { name: 'Message-ID', value: m.internetMessageId },
    ...(m.replyTo?.length ? [{ name: 'Reply-To', value: list(m.replyTo) }] : []),
    { name: 'Content-Language', value: 'en-US' },
    { name: 'Content-Type', value: m.bodyContentType === 'html' ? 'text/html; charset="utf-8"' : 'text/plain; charset="utf-8"' },
    { name: 'MIME-Version', value: '1.0' },
  ];
  return [...headers, ...(m.internetMessageHeaders ?? [])];
}

/** "Tue, 01 Dec 2026 22:54:03 +0000" */
function rfc5322Date(ms: number): string {
  return new Date(Number.isFinite(ms) ? ms : 0).toUTCString().replace('GMT', '+0000');
}
