/**
 * Crash safety, driven from outside like a user's shell: the installed `mailbox-agent run <job> --json` on a backfill
 * whose rules move, PATCH, copy, forward, call a webhook, save attachments (to a local folder and to OneDrive) and
 * reply with a template once per sender, killed (SIGKILL to its process group) at seeded random points, restarted
 * each time, then let to finish. The outcome is checked against the rules evaluated HERE, by this file's own few
 * lines (not the agent's planner), against the files on disk and in the sandbox's OneDrive, and against the
 * sandbox's record of every Graph request and of the replies in Sent Items.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { AdminMessage, DeliverMessageInput } from '../../src/sandbox/admin.ts';
import type { AdminMessageDetail } from '../../src/sandbox/admin-extensions.ts';
import type { GraphRequestLogEntry, TokenRequestLogEntry } from '../../src/sandbox/context.ts';
import { cli } from '../helpers/cli.ts';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';
import { installedPackage } from '../helpers/installed-package.ts';
import { freePort } from '../helpers/servers.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { seededRandom } from './figures.ts';

export const ALICE = 'alice@contoso.test';
const BOB = 'bob@contoso.test';

/** A rule as this test understands it: the few match keys it uses, evaluated by `expectedFor` below. */
interface ProofRule {
  name: string;
  match: { subjectContains?: string; fromDomain?: string; from?: string; hasAttachments?: boolean };
  actions: Record<string, unknown>[];
}

export function proofRules(webhookUrl: string): ProofRule[] {
  return [
    { name: 'invoices', match: { subjectContains: 'invoice' }, actions: [{ categorize: ['Billing'] }, { copyTo: 'Proof/Copies' }, { forwardTo: [BOB] }, { webhook: webhookUrl }, { markRead: true }] },
    { name: 'news', match: { fromDomain: 'news.example.com' }, actions: [{ flag: true }, { moveTo: 'Proof/News' }] },
    { name: 'it', match: { from: 'it-noreply@contoso.test' }, actions: [{ setImportance: 'high' }, { categorize: ['IT'] }] },
  ];
}

/** The local folder of the `files` rule, relative to the jobs file (so under the harness's directory). */
export const SAVE_DIR = 'saved';
/** The OneDrive folder of the invoices' PDFs. */
export const DRIVE_DIR = '/Proof/Invoices';
/** The reply window: longer than the whole proof, so a sender gets at most one reply in it. */
const REPLY_DAYS = 7;
const REPLY_TEMPLATE = 'Thanks {{sender.name}}, I have seen "{{subject}}" and will answer soon.';

/**
 * The crash proof's rules: `proofRules`, plus rules v2's actions that must survive a kill once per attachment and
 * once per sender: the invoices' PDFs saved to OneDrive, every message's attachments saved to a local folder (by
 * the month received, in the mailbox's zone), and a templated reply to urgent mail, at most once per sender a week.
 */
export function crashRules(webhookUrl: string): ProofRule[] {
  const [invoices, ...rest] = proofRules(webhookUrl);
  return [
    { ...invoices!, actions: [...invoices!.actions, { saveAttachments: { to: `onedrive:${DRIVE_DIR}/{yyyy}`, types: ['pdf'] } }] },
    ...rest,
    { name: 'files', match: { hasAttachments: true }, actions: [{ saveAttachments: { to: `./${SAVE_DIR}/{yyyy}/{MM}` } }] },
    { name: 'ack', match: { subjectContains: 'urgent' }, actions: [{ reply: { template: REPLY_TEMPLATE, oncePerSenderDays: REPLY_DAYS } }] },
  ];
}

export function jobsYaml(rules: ProofRule[]): string {
  // Scheduled once a year (1 January, 03:00): under `start`, a scheduled fire never lands on the test's own Run now.
  return `jobs:\n  - name: proof\n    type: inbox-rules\n    schedule: "0 3 1 1 *"\n    folder: inbox\n    backfill: true\n    rules:\n${rules
    .map((r) => `      - name: ${r.name}\n        match: ${JSON.stringify(r.match)}\n        actions: ${JSON.stringify(r.actions)}\n`)
    .join('')}`;
}

function matches(rule: ProofRule, m: AdminMessage): boolean {
  const from = m.from.toLowerCase();
  const domain = from.split('@')[1] ?? '';
  const { subjectContains, fromDomain, from: exact, hasAttachments } = rule.match;
  if (hasAttachments !== undefined && m.hasAttachments !== hasAttachments) return false;
  if (subjectContains !== undefined && !m.subject.toLowerCase().includes(subjectContains.toLowerCase())) return false;
  if (fromDomain !== undefined && domain !== fromDomain && !domain.endsWith(`.${fromDomain}`)) return false;
  if (exact !== undefined && from !== exact.toLowerCase()) return false;
  return true;
}

export interface Expected {
  folder: string;
  categories: string[];
  isRead: boolean;
  flagStatus: string;
  importance: string;
  /** Once-only actions the rules ask for: copyTo, forwardTo, webhook. */
  once: string[];
  /** saveAttachments targets (`to`), with the `types` asked for, and the rule that asks. */
  saves: { rule: string; to: string; types?: string[] }[];
  /** Whether a rule asks for a templated reply. */
  reply: boolean;
}

/** What the rules make of a message, as it was before the run: every matching rule acts, in order. */
export function expectedFor(rules: ProofRule[], m: AdminMessage): Expected {
  const out: Expected = { folder: 'inbox', categories: [...m.categories], isRead: m.isRead, flagStatus: m.flagStatus, importance: m.importance, once: [], saves: [], reply: false };
  for (const rule of rules.filter((r) => matches(r, m))) {
    for (const action of rule.actions) {
      const [kind, value] = Object.entries(action)[0]!;
      if (kind === 'categorize') for (const c of value as string[]) if (!out.categories.includes(c)) out.categories.push(c);
      if (kind === 'markRead') out.isRead = value as boolean;
      if (kind === 'flag') out.flagStatus = value ? 'flagged' : 'notFlagged';
      if (kind === 'setImportance') out.importance = value as string;
      if (kind === 'moveTo') out.folder = value as string;
      if (kind === 'copyTo' || kind === 'forwardTo' || kind === 'webhook') out.once.push(kind);
      if (kind === 'saveAttachments') out.saves.push({ rule: rule.name, ...(value as { to: string; types?: string[] }) });
      if (kind === 'reply') out.reply = true;
    }
  }
  return out;
}

/** The sandbox's mailbox zone of alice ('W. Europe Standard Time'): where `{yyyy}` and `{MM}` are taken. */
const MAILBOX_ZONE = 'Europe/Berlin';

const pdfBytes = (text: string) => Buffer.from(`%PDF-1.4\n% ${text}\n%%EOF\n`);

/**
 * Mail delivered beside the generated mailbox, for what the generator never sends: urgent mail from the person
 * herself, from a noreply address, with List-Id or Auto-Submitted, with a Reply-To (to a person, and to a robot),
 * two urgent messages of one new sender; attachments whose names try to leave the folder or are not file names,
 * two of one name in one message, and an invoice with a PDF and a picture (only the PDF goes to OneDrive).
 */
export function proofExtras(): DeliverMessageInput[] {
  const file = (name: string, text: string, contentType = 'application/pdf') => ({ name, contentType, content: contentType === 'application/pdf' ? pdfBytes(text) : Buffer.from(text) });
  return [
    { subject: 'Urgent: a note to myself', from: ALICE },
    { subject: 'URGENT: your parcel is waiting', from: 'noreply@parcels.example' },
    { subject: 'Urgent: team list digest', from: { name: 'Carol Smith', address: 'carol@contoso.test' }, internetMessageHeaders: [{ name: 'List-Id', value: 'Team <team.contoso.test>' }] },
    { subject: 'Urgent: I am out of office', from: 'dan@contoso.test', internetMessageHeaders: [{ name: 'Auto-Submitted', value: 'auto-replied' }] },
    { subject: 'Urgent: quote needed', from: { name: 'Henry Ng', address: 'henry@fabrikam.example' }, replyTo: [{ name: 'Henry (assistant)', address: 'assistant@fabrikam.example' }] },
    { subject: 'Urgent: order status', from: 'grace@fabrikam.example', replyTo: ['no-reply@fabrikam.example'] },
    { subject: 'urgent: first of two', from: { name: 'Ivy <Lee> & Co', address: 'ivy@fabrikam.example' }, attachments: [file('../../escape.pdf', 'ivy escape'), file('..\\..\\win.txt', 'ivy windows path', 'text/plain')] },
    { subject: 'urgent: second of two', from: { name: 'Ivy <Lee> & Co', address: 'ivy@fabrikam.example' }, attachments: [file('report.pdf', 'ivy report one'), file('report.pdf', 'ivy report two')] },
    { subject: 'Invoice with odd names', from: 'billing@vendor.example', attachments: [file('a:b?.pdf', 'odd name'), file('scan.jpg', 'a picture', 'image/jpeg'), file('.hidden.pdf', 'dot name')] },
  ];
}

/** What the agent must not reply to, by this file's own reading: the person herself, robots, lists, automatic mail. */
function replyable(detail: AdminMessageDetail): boolean {
  const to = (detail.replyTo.length ? detail.replyTo : [detail.from]).map((a) => a.address.toLowerCase());
  if (detail.from.address.toLowerCase() === ALICE || to.includes(ALICE)) return false;
  if (to.some((a) => /^(no-?reply|do-?not-?reply|mailer-daemon|postmaster)\b/.test(a))) return false;
  const header = (name: string) => detail.internetMessageHeaders.find((x) => x.name.toLowerCase() === name.toLowerCase())?.value;
  if (header('List-Id') !== undefined) return false;
  const auto = header('Auto-Submitted');
  return auto === undefined || auto.trim().toLowerCase() === 'no';
}

/** A file name as this test expects it saved: the last path segment, characters no file system takes replaced. */
function expectedFileName(name: string): string {
  const base = (name.split(/[/\\]/).pop() ?? '').replace(/[\u0000-\u001f<>:"|?*]/g, '_').replace(/^[.\s]+|[.\s]+$/g, '');
  return base || 'attachment';
}

/** `name.pdf` for `name (3).pdf`: a numbered copy's original name. */
const unnumbered = (name: string) => name.replace(/ \(\d+\)(?=\.[^.]*$|$)/, '');

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `yyyy`, `MM` of an instant in the mailbox's zone. */
function monthOf(iso: string): { yyyy: string; MM: string } {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: MAILBOX_ZONE, year: 'numeric', month: '2-digit' }).formatToParts(new Date(iso));
  return { yyyy: parts.find((p) => p.type === 'year')!.value, MM: parts.find((p) => p.type === 'month')!.value };
}

/** One attachment a rule must save: where (target root, folder under it), its bytes' hash, its name, its message. */
interface WantedFile {
  target: 'local' | 'onedrive';
  dir: string;
  hash: string;
  size: number;
  name: string;
  messageId: string;
  rule: string;
}

/** Every attachment the rules must save, read from the sandbox before the first run (old REST ids die with a move). */
function wantedFiles(h: Harness, messages: AdminMessage[], expected: Map<string, Expected>): WantedFile[] {
  const out: WantedFile[] = [];
  for (const m of messages) {
    const want = expected.get(m.immutableId)!;
    if (want.saves.length === 0) continue;
    const detail = h.sandbox.admin.messageDetail(ALICE, m.id);
    for (const save of want.saves) {
      const month = monthOf(m.receivedDateTime);
      const onedrive = save.to.startsWith('onedrive:');
      for (const a of detail.attachments) {
        if (a.isInline) continue;
        if (save.types && !save.types.some((t) => (t.includes('/') ? a.contentType === t : a.name.toLowerCase().endsWith(`.${t}`)))) continue;
        const bytes = h.sandbox.admin.attachmentContent(ALICE, m.id, a.id);
        out.push({ target: onedrive ? 'onedrive' : 'local', dir: onedrive ? month.yyyy : `${month.yyyy}/${month.MM}`, hash: sha(bytes), size: bytes.length, name: expectedFileName(a.name), messageId: m.immutableId, rule: save.rule });
      }
    }
  }
  return out;
}

/** Files under `root` (relative paths), recursively. */
function filesUnder(root: string, skip: (full: string) => boolean = () => false): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (skip(full)) continue;
      if (e.isDirectory()) walk(full);
      else if (e.isFile()) out.push(path.relative(root, full));
    }
  };
  walk(root);
  return out;
}

/** A run's record of one action, as `run --json` prints it. */
interface ActionReport {
  messageId: string;
  rule: string;
  action: string;
  result: string;
  error?: string;
}

/**
 * Whether some run that ended reported the action given up: 'unsure', failed for good, or skipped because an
 * interrupted run had started it (a once-only action is then never repeated).
 */
function givenUp(reports: ActionReport[], messageId: string, action: string, rule?: string): boolean {
  return reports.some((a) => a.messageId === messageId && a.action === action && (rule === undefined || a.rule === rule) &&
    (a.result === 'unsure' || (a.result === 'failed' && /not retried/.test(a.error ?? '')) || (a.result === 'skipped' && /interrupted/.test(a.error ?? ''))));
}

export interface SaveFigures {
  /** Attachments the rules ask to save (local folder and OneDrive). */
  wanted: number;
  saved: number;
  /** Missing, and reported given up by a run. */
  reportedGivenUp: number;
  lost: number;
  doubled: number;
  /** Files where none should be: outside the target, in the wrong month's folder, or unknown bytes. */
  misplaced: number;
  /** Temporary `.…part` files a kill left in the target folder and no later run removed (must be 0). */
  leftoverParts: number;
}

/** Every attachment saved exactly once, under its own (or a numbered) name, in its folder; nothing anywhere else. */
function checkSaves(h: Harness, wanted: WantedFile[], reports: ActionReport[], problem: (messageId: string, text: string) => void): SaveFigures {
  const figures: SaveFigures = { wanted: wanted.length, saved: 0, reportedGivenUp: 0, lost: 0, doubled: 0, misplaced: 0, leftoverParts: 0 };
  const localRoot = path.join(h.dir, SAVE_DIR);
  const found: { target: 'local' | 'onedrive'; dir: string; name: string; hash: string; where: string }[] = [];
  for (const rel of filesUnder(localRoot)) {
    const name = path.basename(rel);
    if (/^\..*\.part$/.test(name)) {
      // The next run removes what a killed one left (src/jobs/rules/actions/save-attachments.ts, saveLocal).
      figures.leftoverParts++;
      problem('', `${path.join(SAVE_DIR, rel)}: a temporary file a killed run left in the folder, still there after the finish`);
      continue;
    }
    found.push({ target: 'local', dir: path.dirname(rel).split(path.sep).join('/'), name, hash: sha(readFileSync(path.join(localRoot, rel))), where: path.join(SAVE_DIR, rel) });
  }
  for (const f of h.sandbox.admin.driveFiles(ALICE)) {
    const bytes = h.sandbox.admin.driveFileContent(ALICE, f.path)!;
    if (!f.path.startsWith(`${DRIVE_DIR}/`)) {
      figures.misplaced++;
      problem('', `a file outside ${DRIVE_DIR} in OneDrive: ${f.path}`);
      continue;
    }
    const rel = f.path.slice(DRIVE_DIR.length + 1);
    found.push({ target: 'onedrive', dir: path.posix.dirname(rel), name: path.posix.basename(rel), hash: sha(bytes), where: `onedrive:${f.path}` });
  }
  const key = (x: { target: string; dir: string; hash: string }) => `${x.target}|${x.dir}|${x.hash}`;
  const want = new Map<string, WantedFile[]>();
  for (const w of wanted) want.set(key(w), [...(want.get(key(w)) ?? []), w]);
  const got = new Map<string, typeof found>();
  for (const f of found) got.set(key(f), [...(got.get(key(f)) ?? []), f]);
  for (const [k, files] of got) {
    const w = want.get(k);
    if (!w) {
      figures.misplaced += files.length;
      for (const f of files) problem('', `${f.where}: a file no rule asked for here (wrong folder, or bytes of no attachment)`);
      continue;
    }
    for (const f of files) if (!w.some((x) => x.name === unnumbered(f.name))) problem(w[0]!.messageId, `${f.where} is not named after its attachment (${w[0]!.name})`);
  }
  for (const [k, w] of want) {
    const files = got.get(k) ?? [];
    figures.saved += Math.min(files.length, w.length);
    if (files.length > w.length) {
      figures.doubled += files.length - w.length;
      problem(w[0]!.messageId, `${w[0]!.name} saved ${files.length} times (${files.map((f) => f.where).join(', ')}), expected ${w.length}`);
    }
    for (const missing of w.slice(files.length)) {
      if (givenUp(reports, missing.messageId, 'saveAttachments', missing.rule)) figures.reportedGivenUp++;
      else {
        figures.lost++;
        problem(missing.messageId, `${missing.name} never saved to ${missing.target} ${missing.dir} and no run reported it given up`);
      }
    }
  }
  // Never a file outside the target folder: no attachment's bytes anywhere else in the agent's directory.
  const hashes = new Set(wanted.map((w) => w.hash));
  const sizes = new Set(wanted.map((w) => w.size));
  const elsewhere = filesUnder(h.dir, (full) => full === localRoot || full === path.join(h.dir, 'sandbox'))
    .filter((rel) => sizes.has(statSync(path.join(h.dir, rel)).size) && hashes.has(sha(readFileSync(path.join(h.dir, rel)))));
  for (const rel of elsewhere) {
    figures.misplaced++;
    problem('', `an attachment saved outside ${SAVE_DIR}: ${rel}`);
  }
  return figures;
}

export interface ReplyFigures {
  /** Senders the rules must answer (once each). */
  senders: number;
  replies: number;
  reportedGivenUp: number;
  lost: number;
  doubled: number;
  /** Replies to the person herself, a robot, a list, automatic mail, or mail no rule answers. */
  wrong: number;
}

/**
 * At most one reply per sender (the window is the whole proof), never to what must not be answered, and each
 * sender due a reply got it or a run reported it given up; the Sent Items agree with the request log.
 */
function checkReplies(h: Harness, details: Map<string, AdminMessageDetail>, expected: Map<string, Expected>, mutations: Map<string, number>, sentBefore: Set<string>, reports: ActionReport[], problem: (messageId: string, text: string) => void): ReplyFigures {
  const figures: ReplyFigures = { senders: 0, replies: 0, reportedGivenUp: 0, lost: 0, doubled: 0, wrong: 0 };
  // A reply to a message no rule answers (details holds every message a rule asks to answer).
  for (const [key, times] of mutations) {
    const id = key.slice(0, -':reply'.length);
    if (!key.endsWith(':reply') || details.has(id)) continue;
    figures.replies += times;
    figures.wrong += times;
    problem(id, `${times} reply(ies) to a message no rule answers`);
  }
  const bySender = new Map<string, string[]>();
  const recipients: string[] = [];
  for (const [id, detail] of details) {
    const times = mutations.get(`${id}:reply`) ?? 0;
    figures.replies += times;
    for (let i = 0; i < times; i++) recipients.push(...(detail.replyTo.length ? detail.replyTo : [detail.from]).map((a) => a.address.toLowerCase()));
    const due = expected.get(id)!.reply && replyable(detail);
    if (times > 0 && !due) {
      figures.wrong += times;
      problem(id, `a reply sent to ${detail.from.address}, which must never be answered (own address, robot, list or automatic mail)`);
    }
    // Counted once, with its sender's below.
    if (times > 1) problem(id, `replied ${times} times`);
    if (due) bySender.set(detail.from.address.toLowerCase(), [...(bySender.get(detail.from.address.toLowerCase()) ?? []), id]);
  }
  for (const [sender, ids] of bySender) {
    figures.senders++;
    const times = ids.reduce((n, id) => n + (mutations.get(`${id}:reply`) ?? 0), 0);
    if (times > 1) {
      figures.doubled += times - 1;
      problem(ids[0]!, `${sender} got ${times} replies within the ${REPLY_DAYS} days of oncePerSenderDays`);
    }
    if (times === 0) {
      if (ids.some((id) => givenUp(reports, id, 'reply'))) figures.reportedGivenUp++;
      else {
        figures.lost++;
        problem(ids[0]!, `${sender} never got a reply and no run reported one given up`);
      }
    }
  }
  // Sent Items hold exactly the replies the log shows (new items with In-Reply-To; forwards have none), each to the
  // original's Reply-To, else its sender.
  const sentTo = h.sandbox.admin.messages(ALICE, 'sentitems').filter((m) => !sentBefore.has(m.immutableId))
    .map((m) => h.sandbox.admin.messageDetail(ALICE, m.id))
    .filter((d) => d.internetMessageHeaders.some((x) => x.name.toLowerCase() === 'in-reply-to'))
    .flatMap((d) => d.to.map((a) => a.address.toLowerCase()));
  if (sentTo.sort().join() !== recipients.sort().join()) figures.wrong++, problem('', `the replies in Sent Items (to ${sentTo.join(', ')}) are not the ones the request log shows (to ${recipients.join(', ')})`);
  return figures;
}

/** A local webhook receiver counting calls per message id. */
export async function webhookServer() {
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      try {
        const id = (JSON.parse(body) as { message: { id: string } }).message.id;
        hits.set(id, (hits.get(id) ?? 0) + 1);
      } catch {
        hits.set('(unparsable)', (hits.get('(unparsable)') ?? 0) + 1);
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, hits, close: () => new Promise((r) => server.close(r)) };
}

/** The sandbox's logs drained into lists of our own (the sandbox keeps its newest 5,000 only). */
export function drainLogs(h: Harness) {
  const graph: GraphRequestLogEntry[] = [];
  const tokens: TokenRequestLogEntry[] = [];
  const drain = () => {
    graph.push(...h.sandbox.admin.graphRequests());
    tokens.push(...h.sandbox.admin.tokenRequests());
    h.sandbox.admin.clearLogs();
  };
  return { graph, tokens, drain };
}

/** A Graph request of saveAttachments (attachments, OneDrive, upload ranges) or reply (its look at the message, the reply). */
const ACTION_REQUEST = /\/attachments|\/drive\/|\/_upload\/|\/reply(?:\?|$)|internetMessageHeaders/;

const MUTATION = /\/messages\/([^/?]+)\/(forward|copy|move|reply)(?:\?|$)/;

/** Successful (2xx) Graph mutations per `messageId:action` (copy, forward, move, reply; PATCH as 'patch'). */
export function mutationsOf(log: GraphRequestLogEntry[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of log) {
    if (e.status < 200 || e.status >= 300) continue;
    const pathOnly = decodeURIComponent(e.path);
    let key: string | undefined;
    const m = MUTATION.exec(pathOnly);
    if (e.method === 'POST' && m) key = `${m[1]}:${m[2]}`;
    const p = /\/messages\/([^/?]+)(?:\?|$)/.exec(pathOnly);
    if (e.method === 'PATCH' && p) key = `${p[1]}:patch`;
    if (key) counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

export interface RunOutcome {
  code: number;
  stdout: string;
  stderr: string;
  killed: boolean;
  /** What the kill waited for: 'requests:N', 'refresh', 'time:MS'. */
  point?: string;
}

export interface CrashFigures {
  seed: number;
  messages: number;
  kills: number;
  /** Kill points that the run reached before finishing (the rest found the run already done). */
  killsLanded: number;
  /** Messages whose final state is exactly what the rules say. */
  survived: number;
  lost: number;
  doubled: number;
  /** Once-only actions not done and reported skipped/unsure by a run, as they must be. */
  reportedUnsure: number;
  /** saveAttachments: every attachment once, in its folder (local and OneDrive). */
  saves: SaveFigures;
  /** reply: at most once per sender, never to what must not be answered. */
  replies: ReplyFigures;
  /** Grants revoked for a refresh token presented twice after a kill between Entra's answer and the store write. */
  grantLostInUnclosableWindow: number;
  runs: number;
  killPoints: string[];
}

/**
 * The whole crash proof: sign in, a generated mailbox of `messages`, `kills` kill points from `seed`, then runs to the
 * end. Returns the figures; asserts everything the issue asks (no change twice, once-only at most once, skipped ones
 * reported, grant alive, store opens cleanly).
 */
export async function crashProof(options: { messages: number; kills: number; seed: number; via?: 'run' | 'start' }): Promise<CrashFigures> {
  const random = seededRandom(options.seed);
  const hook = await webhookServer();
  const rules = crashRules(hook.url);
  // Access tokens of 6 s, reused for 3 s (the agent refreshes a short-lived token at half its lifetime): refreshes happen during the runs.
  const h = await startHarness({ jobsFile: jobsYaml(rules), sandboxOptions: { accessTokenLifetimeSec: 6 } });
  const logDir = path.join(h.dir, 'logs');
  mkdirSync(logDir, { recursive: true });
  try {
    h.sandbox.admin.generate(ALICE, options.messages, options.seed);
    const extras = proofExtras();
    for (const m of extras) h.sandbox.admin.deliver(ALICE, m);
    // A simple upload takes at most 121 bytes here: the generated invoices (122 bytes) go through upload sessions,
    // their terms and conditions (121) and most delivered PDFs through the simple upload.
    h.sandbox.admin.setSimpleUploadMaxBytes(121);
    await signIn(h);
    h.sandbox.admin.setRevokeOnReuse(true);
    // Sub-requests take a little time in their slot, so a kill can land between a batch's send and its answer.
    h.sandbox.admin.setSubRequestMs(3);
    const before = h.sandbox.admin.messages(ALICE, 'inbox');
    assert.equal(before.length, options.messages + extras.length);
    const expected = new Map(before.map((m) => [m.immutableId, expectedFor(rules, m)]));
    const wanted = wantedFiles(h, before, expected);
    const sentBefore = new Set(h.sandbox.admin.messages(ALICE, 'sentitems').map((m) => m.immutableId));
    const details = new Map(before.filter((m) => expected.get(m.immutableId)!.reply).map((m) => [m.immutableId, h.sandbox.admin.messageDetail(ALICE, m.id)]));
    const logs = drainLogs(h);
    logs.drain();
    const bin = (await installedPackage()).bin;
    const results: { actions: ActionReport[]; ok: boolean }[] = [];
    const killPoints: string[] = [];
    let killsLanded = 0;
    let grantLost = 0;
    let runs = 0;

    /**
     * One `run proof --json` (or `start` + Run now), killed at `point` unless it ends first. requests: after the n-th
     * Graph request (sub-requests included) of the run; action: `delayMs` after the n-th request of a saveAttachments
     * or reply (an attachment read, a OneDrive lookup, upload or upload range, a reply's look at the message or the
     * reply itself), so kills land between a file's bytes and its ledger, or a reply and its record; refresh:
     * `delayMs` after Entra answered a refresh (or at the n-th request if none comes first); time: `ms` after the
     * run's first Graph request.
     */
    const runOnce = async (point?: { kind: 'requests'; n: number } | { kind: 'action'; n: number; delayMs: number } | { kind: 'refresh'; delayMs: number; n: number } | { kind: 'time'; ms: number }): Promise<RunOutcome> => {
      runs++;
      logs.drain();
      const graphAtStart = logs.graph.length;
      const refreshesAtStart = logs.tokens.filter((t) => t.grantType === 'refresh_token').length;
      const port = options.via === 'start' ? await freePort() : 0;
      const args = options.via === 'start' ? ['start'] : ['run', 'proof', '--json'];
      const child = spawn(bin, args, { cwd: h.dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...h.env, ...(port ? { PORT: String(port) } : {}) }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let stdout = '';
      let stderr = '';
      let answered: Promise<number> | undefined;
      if (options.via === 'start') {
        // `start`, then "Run now" through the API once it listens; the answer is the run's JSON.
        child.stderr.on('data', (d) => (stderr += d));
        child.stdout.on('data', (d) => (stderr += d));
        answered = (async () => {
          for (;;) {
            if (child.exitCode !== null || child.signalCode !== null) return -1;
            const up = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
            if (up) break;
            await sleep(50);
          }
          try {
            const res = await fetch(`http://127.0.0.1:${port}/api/jobs/proof/run`, { method: 'POST' });
            stdout = await res.text();
            const result = JSON.parse(stdout) as { ok: boolean; errorCode?: string };
            return result.errorCode === 'NEEDS_SIGNIN' ? 2 : res.ok && result.ok ? 0 : 1;
          } catch {
            return -1; // killed while the run was in flight
          } finally {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          }
        })();
      } else {
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
      }
      let killed = false;
      let killedAt = 0;
      const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
      let firstRequestAt: number | undefined;
      let afterRefresh = false;
      let actionSeen = false;
      let actionRequests = 0;
      let scanned = graphAtStart;
      const kill = () => {
        if (killed || child.exitCode !== null) return;
        killed = true;
        killedAt = Date.now();
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      };
      const watch = point && setInterval(() => {
        logs.drain();
        if (point.kind === 'requests' && logs.graph.length - graphAtStart >= point.n) kill();
        if (point.kind === 'action' && !actionSeen) {
          // Counted as the log grows (this test's process is also the sandbox's: a rescan every 2 ms would slow it).
          for (; scanned < logs.graph.length; scanned++) if (ACTION_REQUEST.test(logs.graph[scanned]!.path)) actionRequests++;
          if (actionRequests >= point.n) {
            actionSeen = true;
            setTimeout(kill, point.delayMs);
          }
        }
        if (point.kind === 'refresh' && !afterRefresh && logs.tokens.filter((t) => t.grantType === 'refresh_token').length > refreshesAtStart) {
          afterRefresh = true;
          setTimeout(kill, point.delayMs);
        }
        if (point.kind === 'refresh' && logs.graph.length - graphAtStart >= point.n) kill();
        if (point.kind === 'time' && logs.graph.length > graphAtStart) firstRequestAt ??= Date.now();
        if (point.kind === 'time' && firstRequestAt !== undefined && Date.now() - firstRequestAt >= point.ms) kill();
      }, 2);
      const exitCode = await exited;
      const code = answered ? await answered : exitCode;
      if (watch) clearInterval(watch);
      logs.drain();
      writeFileSync(path.join(logDir, `run-${runs}.log`), `${stdout}\n${stderr}`);
      if (killed) killsLanded++;
      return { code, stdout, stderr, killed, point: point && (point.kind === 'refresh' ? (afterRefresh ? `refresh+${point.delayMs}ms` : `refresh (none came):requests:${point.n}`) : point.kind === 'action' ? `action:${point.n}+${point.delayMs}ms` : `${point.kind}:${'n' in point ? point.n : point.ms}`), ...(killed ? { killedAt } : {}) } as RunOutcome & { killedAt?: number };
    };

    /** A run that ended by itself: its JSON is kept; a grant lost to a kill in the unclosable window is signed in again. */
    const settle = async (outcome: RunOutcome & { killedAt?: number }, lastKillAt: number) => {
      if (outcome.killed) return;
      if (outcome.code === 2) {
        const reuse = logs.tokens.some((t) => t.aadsts === 70008);
        assert.ok(reuse, `run exited 2 without a refresh-token reuse: ${outcome.stderr}`);
        // Entra answered a refresh and the process was killed before it stored the new token (token-crash.test.ts).
        const answeredBeforeKill = logs.tokens.some((t) => t.grantType === 'refresh_token' && t.status === 200 && Date.parse(t.at) <= lastKillAt && lastKillAt - Date.parse(t.at) < 5_000);
        assert.ok(answeredBeforeKill, 'a refresh token was presented twice although no kill landed between a refresh answer and its store write');
        grantLost++;
        logs.tokens.length = 0;
        await signIn(h);
        h.sandbox.admin.setRevokeOnReuse(true);
        return;
      }
      const json = JSON.parse(outcome.stdout) as (typeof results)[number];
      results.push(json);
    };

    /** Messages not yet as the rules want them (by this test's evaluation): what the next run still has to do. */
    const remainingWork = () => {
      const folderNames = new Map(h.sandbox.admin.folders(ALICE).map((f) => [f.id, f.wellKnownName ?? f.path]));
      let left = 0;
      for (const m of h.sandbox.admin.messages(ALICE)) {
        const want = expected.get(m.immutableId);
        if (!want) continue;
        const same = folderNames.get(m.folderId) === want.folder && m.isRead === want.isRead && m.flagStatus === want.flagStatus && m.importance === want.importance && m.categories.length === want.categories.length;
        if (!same) left++;
      }
      return left;
    };
    let lastKillAt = 0;
    for (let i = 0; i < options.kills; i++) {
      // A page is committed in one write at its end, so every run until one finishes replays the backfill from its
      // start: kill points within the first part of a run always land (before the start-up, mid-page, mid-batch).
      const r = random();
      // Kill points fall within the first third of what is left to do (a run makes ~1.2 Graph requests, sub-requests
      // included, per message still to change, ~3 ms each), so most land mid-work instead of after the run is done.
      const most = Math.max(3, Math.floor(remainingWork() * 0.4));
      const point = r < 0.4 ? { kind: 'requests' as const, n: 1 + Math.floor(random() * most) }
        : r < 0.6 ? { kind: 'action' as const, n: 1 + Math.floor(random() * 40), delayMs: Math.floor(random() * 15) }
        : r < 0.8 ? { kind: 'refresh' as const, delayMs: Math.floor(random() * 30), n: 1 + Math.floor(random() * most) }
          : { kind: 'time' as const, ms: Math.floor(random() * most * 3) };
      const outcome = await runOnce(point);
      killPoints.push(`${outcome.point}${outcome.killed ? '' : ' (finished first)'}`);
      if (outcome.killed) lastKillAt = (outcome as RunOutcome & { killedAt: number }).killedAt;
      await settle(outcome, lastKillAt);
    }
    // Let it finish: runs until one ends ok (a few may be needed when the last kill cost the grant).
    let final: RunOutcome | undefined;
    for (let i = 0; i < 4; i++) {
      final = await runOnce();
      await settle(final, lastKillAt);
      if (final.code === 0) break;
    }
    assert.equal(final?.code, 0, `the last run failed: ${final?.stdout} ${final?.stderr}`);
    const quiet = await runOnce();
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.deepEqual(JSON.parse(quiet.stdout).actions, [], 'a run after the finish has nothing left to do');

    // The outcome, message by message, against this file's own evaluation of the rules.
    const folders = new Map(h.sandbox.admin.folders(ALICE).map((f) => [f.id, f.wellKnownName ?? f.path]));
    const now = new Map(h.sandbox.admin.messages(ALICE).map((m) => [m.immutableId, m]));
    const mutations = mutationsOf(logs.graph);
    const reported = new Set(results.flatMap((r) => r.actions).filter((a) => a.result === 'skipped' || a.result === 'unsure').map((a) => `${a.messageId}:${a.action}`));
    let survived = 0;
    let lost = 0;
    let doubled = 0;
    let reportedUnsure = 0;
    const problems: string[] = [];
    // Attachments and replies, checked first: a message with a problem there has not survived either.
    const reports = results.flatMap((r) => r.actions);
    const failing = new Set<string>();
    const note = (id: string, text: string) => {
      if (id) failing.add(id);
      problems.push(`${id ? `${id.slice(-12)} ${before.find((m) => m.immutableId === id)?.subject}` : '(no message)'}: ${text}`);
    };
    const saves = checkSaves(h, wanted, reports, note);
    const replies = checkReplies(h, details, expected, mutations, sentBefore, reports, note);
    lost += saves.lost + replies.lost;
    doubled += saves.doubled + replies.doubled + replies.wrong + saves.misplaced;
    const copiesFolder = h.sandbox.admin.folders(ALICE).find((f) => f.path === 'Proof/Copies');
    const copies = copiesFolder ? h.sandbox.admin.messages(ALICE, copiesFolder.id) : [];
    for (const [id, want] of expected) {
      const m = now.get(id);
      const problem = (text: string) => problems.push(`${id.slice(-12)} ${m?.subject}: ${text}`);
      if (!m) {
        lost++;
        problem('gone from the mailbox');
        continue;
      }
      let ok = true;
      const folder = folders.get(m.folderId);
      if (folder !== want.folder) (ok = false), problem(`in ${folder}, expected ${want.folder}`);
      if (new Set(m.categories).size !== m.categories.length) (ok = false), doubled++, problem(`categories doubled: ${m.categories}`);
      if ([...m.categories].sort().join() !== [...want.categories].sort().join()) (ok = false), problem(`categories ${m.categories}, expected ${want.categories}`);
      if (m.isRead !== want.isRead) (ok = false), problem(`isRead ${m.isRead}`);
      if (m.flagStatus !== want.flagStatus) (ok = false), problem(`flag ${m.flagStatus}`);
      if (m.importance !== want.importance) (ok = false), problem(`importance ${m.importance}`);
      for (const action of want.once) {
        const times = action === 'webhook' ? hook.hits.get(id) ?? 0 : mutations.get(`${id}:${action === 'copyTo' ? 'copy' : 'forward'}`) ?? 0;
        if (times > 1) (ok = false), doubled++, problem(`${action} happened ${times} times`);
        if (times === 0) {
          if (reported.has(`${id}:${action}`)) reportedUnsure++;
          else (ok = false), lost++, problem(`${action} never happened and no run reported it skipped or unsure`);
        }
      }
      if ((mutations.get(`${id}:move`) ?? 0) > 1 && want.folder === 'inbox') (ok = false), doubled++, problem('moved although it should stay');
      if (failing.has(id)) ok = false;
      if (ok) survived++;
    }
    // Every copy in Proof/Copies is one the log shows, and none is a copy of a copy.
    const copyCount = [...mutations].filter(([k]) => k.endsWith(':copy')).reduce((n, [, v]) => n + v, 0);
    assert.equal(copies.length, copyCount, 'one message in Proof/Copies per successful copy request');
    // Forwards: bob received exactly one per successful forward request.
    const forwardCount = [...mutations].filter(([k]) => k.endsWith(':forward')).reduce((n, [, v]) => n + v, 0);
    assert.equal(h.sandbox.admin.messages(BOB, 'inbox').filter((m) => m.subject.startsWith('FW: ')).length, forwardCount);
    // The grant is alive: the next refresh works, and no refresh token was presented twice after the last sign-in.
    assert.ok(!logs.tokens.some((t) => t.aadsts === 70008), 'no refresh token was presented twice (since the last sign-in)');
    await h.rt.auth.getAccessToken({ forceRefresh: true });
    logs.drain();
    assert.ok(!logs.tokens.some((t) => t.aadsts === 70008), 'the stored refresh token still works');
    // The store opens cleanly in a fresh process (status reads the tokens and the job's last run) and here.
    logs.drain();
    const status = await cli(['status', '--json'], h.env, h.dir);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    const state = JSON.parse(status.stdout) as { state: string; jobs: { name: string; lastResult?: { ok: boolean } }[] };
    assert.equal(state.state, 'ready');
    assert.equal(state.jobs.find((j) => j.name === 'proof')?.lastResult?.ok, true);
    assert.ok(await h.rt.store.getSecret('auth:tokens'), 'the tokens decrypt');
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} messages differ from the rules' outcome (seed ${options.seed})`);
    return { seed: options.seed, messages: before.length, kills: options.kills, killsLanded, survived, lost, doubled, reportedUnsure, saves, replies, grantLostInUnclosableWindow: grantLost, runs, killPoints };
  } finally {
    await h.close();
    await hook.close();
  }
}
