import { checkTexts, listOf, lower, verdict, type KeyDefinition } from '../definition.ts';

/** `a@news.example.com` is in `news.example.com`, so is `a@mail.news.example.com`; `a@evilnews.example.com` is not. */
export function inDomain(address: string, domain: string): boolean {
  const at = address.lastIndexOf('@');
  if (at < 0) return false;
  const host = lower(address.slice(at + 1)).replace(/\.$/, '');
  const d = lower(domain).replace(/^[@.]+/, '').replace(/\.$/, '');
  return d !== '' && (host === d || host.endsWith(`.${d}`));
}

/** `fromDomain: news.example.com`: the sender's domain and its subdomains. */
export const fromDomain: KeyDefinition<string | string[]> = {
  check: (raw, at, t) =>
    checkTexts(raw, at, 'fromDomain', t, (s, p) => {
      const d = s.trim();
      if (d.includes('@')) {
        t.add(p, `fromDomain takes a domain, and ${JSON.stringify(s)} contains "@". Fix: write fromDomain: ${d.slice(d.lastIndexOf('@') + 1)} for the domain, or from: ${d} for that one address.`);
      } else if (d.startsWith('*') || d.startsWith('.')) {
        t.add(p, `fromDomain ${JSON.stringify(s)} has a wildcard or leading dot; fromDomain already matches subdomains. Fix: write fromDomain: ${d.replace(/^[*.]+/, '')}.`);
      } else if (!/^[^\s/:]+\.[^\s/:]+$/.test(d) || d.endsWith('.')) {
        t.add(p, `${JSON.stringify(s)} is not a domain name. Fix: write a domain such as news.example.com.`);
      } else return true;
      return false;
    }),
  fields: ['from'],
  test: (value, msg) => msg.from !== undefined && listOf(value).some((d) => inDomain(msg.from!, d)),
  explain: (value, msg, matched) => verdict('fromDomain', value, matched, `sender ${msg.from ?? '(none)'}`),
  permission: undefined,
  readme: { example: 'fromDomain: news.example.com', text: 'the sender\'s domain and its subdomains' },
};
