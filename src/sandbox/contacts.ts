import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SandboxContext } from './context.ts';
import { GraphError } from './graph-error.ts';
import { contextUrl, maxPageSize, project, selectOf, type ExtensionCall } from './graph-route.ts';
import type { Mailbox, StoredContact } from './mailbox-store.ts';

/**
 * Personal contacts [graph api user-list-contacts, contact-get, contact-delta]: `GET /me/contacts`,
 * `/me/contacts/{id}`, `/me/contactFolders/{id}` (the default folder; `GET /me/contactFolders` lists its
 * child folders, none here), and delta on `/me/contactFolders/{id}/contacts/delta` (documented in v1.0) and
 * `/me/contacts/delta` (exists, undocumented). Delta works like message delta: nextLink pages, a deltaLink at
 * the end, `@removed` for deleted contacts, query options kept in the tokens.
 */
const CONTACT_PROPERTIES = [
  'id', 'createdDateTime', 'lastModifiedDateTime', 'changeKey', 'categories', 'parentFolderId', 'birthday', 'fileAs', 'displayName',
  'givenName', 'initials', 'middleName', 'nickName', 'surname', 'title', 'jobTitle', 'companyName', 'department', 'officeLocation',
  'profession', 'businessHomePage', 'assistantName', 'manager', 'homePhones', 'mobilePhone', 'businessPhones', 'spouseName',
  'personalNotes', 'children', 'emailAddresses', 'imAddresses',
] as const;
const LIST_DEFAULT_PAGE = 10;
const DELTA_DEFAULT_PAGE = 10;

function contactJson(box: Mailbox, c: StoredContact): Record<string, unknown> {
  return {
    '@odata.etag': `W/"${c.changeKey}"`, id: c.id, createdDateTime: c.createdDateTime, lastModifiedDateTime: c.lastModifiedDateTime,
    changeKey: c.changeKey, categories: [], parentFolderId: box.contactsFolderId, birthday: null, fileAs: '', displayName: c.displayName,
    givenName: c.givenName, initials: null, middleName: null, nickName: null, surname: c.surname, title: null, jobTitle: null,
    companyName: null, department: null, officeLocation: null, profession: null, businessHomePage: null, assistantName: null,
    manager: null, homePhones: [], mobilePhone: null, businessPhones: [], spouseName: null, personalNotes: '', children: [],
    emailAddresses: c.emailAddresses.map((a) => ({ name: a.name, address: a.address })), imAddresses: [],
  };
}

const notFound = () => new GraphError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');

export function contactsRoute(ctx: SandboxContext, call: ExtensionCall, rest: string[]): unknown {
  if (call.req.method !== 'GET') throw new GraphError(405, 'BadRequest', `The HTTP method '${call.req.method}' is not supported for this resource.`);
  const box = call.box;
  let tail = rest.slice(1);
  let viaFolder = false;
  if (rest[0] === 'contactFolders') {
    if (tail.length === 0) return { '@odata.context': contextUrl(ctx, call, 'contactFolders'), value: [] };
    if (tail[0] !== box.contactsFolderId) throw notFound();
    if (tail.length === 1) {
      return { '@odata.context': contextUrl(ctx, call, 'contactFolders/$entity'), id: box.contactsFolderId, displayName: 'Contacts', parentFolderId: box.rootId };
    }
    if (tail[1] !== 'contacts') throw new GraphError(400, 'BadRequest', `Resource not found for the segment '${tail[1]}'.`);
    tail = tail.slice(2);
    viaFolder = true;
  }
  if (tail[0] === 'delta' && tail.length === 1) return delta(ctx, call, viaFolder);
  const select = selectOf(call.query.get('$select'), CONTACT_PROPERTIES, 'contact');
  if (tail.length === 0) return list(ctx, call, select);
  if (tail.length === 1) {
    const c = box.contacts.get(tail[0]!);
    if (!c) throw notFound();
    return { '@odata.context': contextUrl(ctx, call, 'contacts/$entity'), ...project(contactJson(box, c), select, ['@odata.etag', 'id']) };
  }
  throw new GraphError(400, 'BadRequest', `Resource not found for the segment '${tail[1]}'.`);
}

function list(ctx: SandboxContext, call: ExtensionCall, select: Set<string> | undefined) {
  const top = Number(call.query.get('$top') ?? LIST_DEFAULT_PAGE);
  const skip = Number(call.query.get('$skip') ?? 0);
  if (!Number.isInteger(top) || top < 1 || top > 1000) throw new GraphError(400, 'ErrorInvalidRequest', 'The value of $top must be between 1 and 1000.');
  if (!Number.isInteger(skip) || skip < 0) throw new GraphError(400, 'BadRequest', `Invalid value '${call.query.get('$skip')}' for $skip query option found.`);
  const all = [...call.box.contacts.values()].sort((a, b) => a.displayName.localeCompare(b.displayName) || a.seq - b.seq);
  const body: Record<string, unknown> = {
    '@odata.context': contextUrl(ctx, call, 'contacts'),
    value: all.slice(skip, skip + top).map((c) => project(contactJson(call.box, c), select, ['@odata.etag', 'id'])),
  };
  if (skip + top < all.length) {
    const q = new URLSearchParams(call.query);
    q.set('$top', String(top));
    q.set('$skip', String(skip + top));
    body['@odata.nextLink'] = `${ctx.origin}/v1.0/${call.base}/contacts?${q.toString().replace(/%24/g, '$')}`;
  }
  return body;
}

interface DeltaState {
  w: number; // changes after this seq
  u?: number; // upper bound of the current round
  c?: number; // cursor within the round
  i: boolean; // initial round
  s?: string; // $select
  g: number; // delta generation (admin can expire every token)
  f: boolean; // asked through the contact folder
}

function secretOf(ctx: SandboxContext): Buffer {
  return Buffer.from(`${ctx.signing.kid}:contacts-delta`);
}

function encode(ctx: SandboxContext, st: DeltaState): string {
  const json = Buffer.from(JSON.stringify(st)).toString('base64url');
  return `${json}.${createHmac('sha256', secretOf(ctx)).update(json).digest('base64url').slice(0, 16)}`;
}

function decode(ctx: SandboxContext, token: string): DeltaState {
  const [json, mac] = token.split('.');
  const expected = json ? createHmac('sha256', secretOf(ctx)).update(json).digest('base64url').slice(0, 16) : '';
  if (!json || !mac || mac.length !== expected.length || !timingSafeEqual(Buffer.from(mac), Buffer.from(expected))) {
    throw new GraphError(400, 'BadRequest', 'The sync state is invalid or corrupt.');
  }
  return JSON.parse(Buffer.from(json, 'base64url').toString('utf8')) as DeltaState;
}

function delta(ctx: SandboxContext, call: ExtensionCall, viaFolder: boolean) {
  const box = call.box;
  const asked = maxPageSize(call.req);
  const pageSize = Math.max(1, Math.min(asked ?? DELTA_DEFAULT_PAGE, 1000));
  const skip = call.query.get('$skiptoken');
  const dtok = call.query.get('$deltatoken');
  const generation = ctx.state.data.deltaGeneration ?? 0;
  let st: DeltaState;
  if (skip || dtok) {
    st = decode(ctx, (skip ?? dtok)!);
    if (st.g !== generation) throw new GraphError(410, 'SyncStateNotFound', 'The sync state generation is invalid or has expired. Please restart the sync.');
    if (dtok) st = { ...st, i: false, u: undefined, c: undefined };
  } else {
    selectOf(call.query.get('$select'), CONTACT_PROPERTIES, 'contact');
    st = { w: 0, i: true, s: call.query.get('$select') ?? undefined, g: generation, f: viaFolder };
  }
  const upper = st.u ?? box.seq;
  const cursor = st.c ?? (st.i ? 0 : st.w);
  const select = selectOf(st.s ?? null, CONTACT_PROPERTIES, 'contact');
  const items: { seq: number; json: Record<string, unknown> }[] = [];
  for (const c of box.contacts.values()) {
    if (c.seq > cursor && c.seq <= upper) {
      items.push({ seq: c.seq, json: { '@odata.type': '#microsoft.graph.contact', ...project(contactJson(box, c), select, ['@odata.etag', 'id']) } });
    }
  }
  if (!st.i) {
    for (const t of box.contactTombstones) {
      if (t.seq > cursor && t.seq <= upper) items.push({ seq: t.seq, json: { '@odata.type': '#microsoft.graph.contact', id: t.id, '@removed': { reason: 'deleted' } } });
    }
  }
  items.sort((a, b) => a.seq - b.seq);
  const page = items.slice(0, pageSize);
  const base = st.f ? `${ctx.origin}/v1.0/${call.base}/contactFolders('${encodeURIComponent(box.contactsFolderId)}')/contacts/delta` : `${ctx.origin}/v1.0/${call.base}/contacts/delta`;
  const body: Record<string, unknown> = { '@odata.context': `${ctx.origin}/v1.0/$metadata#Collection(contact)` };
  if (items.length > pageSize) body['@odata.nextLink'] = `${base}?$skiptoken=${encode(ctx, { ...st, u: upper, c: page[page.length - 1]!.seq })}`;
  else body['@odata.deltaLink'] = `${base}?$deltatoken=${encode(ctx, { ...st, w: upper, u: undefined, c: undefined, i: false })}`;
  body.value = page.map((it) => it.json);
  if (asked !== undefined) call.res.setHeader('Preference-Applied', `odata.maxpagesize=${pageSize}`);
  return body;
}
