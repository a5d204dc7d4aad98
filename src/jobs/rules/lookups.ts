/**
 * What some keys read beyond delta's message fields, looked up by the run only when a rule uses such a key:
 * once per run (the owner's address for sentToMe, the contacts for fromContacts) or per candidate message
 * (headers, attachments: batched, 20 per request). Jobs whose rules use none of these keys cost no request.
 */
import type { MatchSpec, Rule } from '../../config/jobs-file.ts';
import type { BatchRequest } from '../../graph/client.ts';
import { GraphError } from '../../graph/graph-error.ts';
import type { GraphMessage } from '../../graph/mailbox.ts';
import type { JobContext } from '../context.ts';

/** What the look-ups use of a job's context (explain gives them the same, as a dry run). */
export type LookupContext = Pick<JobContext, 'store' | 'mailbox' | 'graph' | 'dryRun' | 'signal' | 'runStart'>;
import { envNeeds, extrasFor, fetchNeeds } from '../rules.ts';
import type { KeyFetch, MatchEnv } from './definition.ts';
import type { AttachmentInfo, MessageView } from './message.ts';
import { ownAddress } from './own-address.ts';

/** The contacts as the job's store keeps them: each contact's addresses, and where contacts delta goes on. */
interface ContactsState {
  /** Contacts delta's next link; absent until the default folder is known (no contact yet). */
  link?: string;
  addresses: Record<string, string[]>;
}

const CONTACTS_KEY = 'contacts';

/**
 * The run's MatchEnv: the owner's address and the contacts only when some rule needs them.
 * Example: `const env = await loadMatchEnv(ctx, job.rules)`.
 */
export async function loadMatchEnv(ctx: LookupContext, rules: Rule[]): Promise<MatchEnv> {
  const needs = envNeeds(rules);
  const env: MatchEnv = { runStart: ctx.runStart };
  if (needs.has('me')) env.me = await ownAddress(ctx);
  if (needs.has('contacts')) env.contacts = await contactAddresses(ctx);
  return env;
}

/**
 * Every address of the person's contacts, kept in the job's store and brought up to date with contacts delta on
 * the default contacts folder (docs/microsoft-notes.md "Headers, attachments, contacts": the folder form is the
 * documented one; the folder's id is any contact's parentFolderId).
 */
async function contactAddresses(ctx: LookupContext, fresh = false): Promise<Set<string>> {
  const state = (fresh ? undefined : await ctx.store.get<ContactsState>(CONTACTS_KEY)) ?? { addresses: {} };
  let link = state.link;
  if (!link) {
    const first = (await ctx.graph.get<{ value?: { parentFolderId?: string }[] }>(ctx.mailbox.path('/contacts?$top=1&$select=parentFolderId'), { signal: ctx.signal })).body;
    const folder = first.value?.[0]?.parentFolderId;
    if (!folder) return new Set();
    link = ctx.mailbox.path(`/contactFolders/${encodeURIComponent(folder)}/contacts/delta?$select=emailAddresses`);
  }
  for (;;) {
    let body: { value?: { id: string; emailAddresses?: { address?: string }[]; '@removed'?: unknown }[]; '@odata.nextLink'?: string; '@odata.deltaLink'?: string };
    try {
      body = (await ctx.graph.get<typeof body>(link, { signal: ctx.signal })).body;
    } catch (error) {
      // The sync state expired: start over from the folder (the whole list comes again).
      if (error instanceof GraphError && error.isSyncStateLost && !fresh) return contactAddresses(ctx, true);
      throw error;
    }
    for (const c of body.value ?? []) {
      if (c['@removed']) delete state.addresses[c.id];
      else state.addresses[c.id] = (c.emailAddresses ?? []).map((e) => e.address?.trim().toLowerCase()).filter((a): a is string => Boolean(a));
    }
    const next = body['@odata.nextLink'] ?? body['@odata.deltaLink'];
    if (!next) throw new GraphError({ status: 200, code: 'InvalidResponse', message: 'a contacts delta page with neither @odata.nextLink nor @odata.deltaLink', method: 'GET', path: 'contacts/delta' });
    link = next;
    if (body['@odata.deltaLink']) break;
  }
  if (!ctx.dryRun) await ctx.store.set<ContactsState>(CONTACTS_KEY, { link, addresses: state.addresses });
  return new Set(Object.values(state.addresses).flat());
}

/**
 * Fetches the headers and attachments the rules need for the messages of a page that are still candidates, in
 * `$batch`es of 20 GETs, and puts them on the views. A message gone meanwhile (404) is dropped from the page.
 */
export async function fetchExtras(ctx: LookupContext, rules: Rule[], pages: { message: GraphMessage; view: MessageView }[], env: MatchEnv): Promise<{ message: GraphMessage; view: MessageView }[]> {
  if (fetchNeeds(rules).size === 0) return pages;
  const asks: { index: number; fetch: KeyFetch; request: BatchRequest }[] = [];
  const inline = countsInline(rules);
  pages.forEach(({ view }, index) => {
    // hasAttachments leaves out inline ones: without it a message has nothing to list, unless a rule counts inline ones.
    if (!view.hasAttachments && !inline) view.attachments = [];
    for (const fetch of extrasFor(rules, view, env)) {
      asks.push({ index, fetch, request: fetch === 'headers' ? ctx.mailbox.headersRequest(view.id) : ctx.mailbox.attachmentsRequest(view.id) });
    }
  });
  if (asks.length === 0) return pages;
  const results = await ctx.graph.batch(asks.map((a) => a.request), { signal: ctx.signal });
  const gone = new Set<number>();
  results.forEach((r, i) => {
    const { index, fetch } = asks[i]!;
    if (r.status === 404) {
      gone.add(index);
      return;
    }
    if (r.status < 200 || r.status >= 300 || r.error) throw r.error ?? new GraphError({ status: r.status, code: 'InvalidResponse', message: `fetching ${fetch} answered ${r.status}`, method: 'GET', path: asks[i]!.request.url });
    const body = (r.body ?? {}) as { internetMessageHeaders?: { name?: string; value?: string }[]; value?: Partial<AttachmentInfo>[] };
    const view = pages[index]!.view;
    if (fetch === 'headers') {
      view.headers = (body.internetMessageHeaders ?? []).filter((h) => typeof h.name === 'string').map((h) => ({ name: h.name!, value: String(h.value ?? '') }));
    } else {
      view.attachments = (body.value ?? []).map((a) => ({ name: String(a.name ?? ''), contentType: String(a.contentType ?? ''), size: Number(a.size ?? 0), isInline: a.isInline === true }));
    }
  });
  return pages.filter((_, i) => !gone.has(i));
}

/** Whether some rule's attachment key counts inline attachments (`inline: true`). */
function countsInline(rules: Rule[]): boolean {
  const walk = (m: MatchSpec): boolean => m.attachmentName?.inline === true || m.attachmentType?.inline === true || (m.any ?? []).some(walk);
  return rules.some((r) => walk(r.match));
}
