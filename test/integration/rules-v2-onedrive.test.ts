import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FetchLike } from '../../src/config/transport.ts';
import { GraphClient } from '../../src/graph/client.ts';
import { Mailbox, type GraphMessage } from '../../src/graph/mailbox.ts';
import { jobStore } from '../../src/jobs/context.ts';
import { saveAttachments } from '../../src/jobs/rules/actions/save-attachments.ts';
import { signIn, startHarness, type Harness } from '../helpers/harness.ts';

const ALICE = 'alice@contoso.test';

const JOBS = `timezone: Pacific/Auckland
jobs:
  - name: drive
    type: inbox-rules
    schedule: "*/5 * * * *"
    rules:
      - name: receipts
        match: { subjectContains: "[drive]" }
        actions: [ { saveAttachments: { to: "onedrive:/Receipts/{yyyy}/{MM}", types: [pdf] } } ]
`;

/** A PDF-looking attachment of `n` bytes whose content tells its position (a misplaced range shows). */
function pdf(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  b.write('%PDF', 0);
  return b;
}

describe('saveAttachments to OneDrive through the sandbox', () => {
  let h: Harness;
  /** Every request the agent's transport sent to an upload URL, with whether it carried an Authorization header. */
  const uploads: { method: string; range: string | null; authorized: boolean }[] = [];
  // 2026-01-31T12:00Z is 1 February in Auckland: the placeholders follow the jobs file's zone.
  const received = '2026-01-31T12:00:00Z';
  const folder = '/Receipts/2026/02';

  before(async () => {
    h = await startHarness({ jobsFile: JOBS });
    await signIn(h);
    assert.equal((await h.rt.runner.run('drive', {})).ok, true);
  });
  after(() => h?.close());

  /** A Graph client on the sandbox whose transport notes upload-URL requests and can fail the `failRange`-th range. */
  function recordingGraph(failRange?: number): GraphClient {
    let ranges = 0;
    const fetchImpl: FetchLike = async (input, init) => {
      const url = new URL(String(input));
      const headers = new Headers(init?.headers);
      if (url.pathname.startsWith('/_upload/')) {
        uploads.push({ method: String(init?.method), range: headers.get('content-range'), authorized: headers.has('authorization') });
        if (init?.method === 'PUT' && ++ranges === failRange) throw new TypeError('fetch failed (the agent crashed mid-session)');
      }
      return h.fetch(input, init);
    };
    return new GraphClient({ graphUrl: new URL(h.sandbox.url), tokens: h.rt.tokens, fetch: fetchImpl, log: h.rt.log, retry: { delayFor: () => undefined } });
  }

  function actionContext(graph: GraphClient, job = 'direct') {
    return {
      job, mailbox: new Mailbox(graph, '/me'), graph, store: jobStore(h.rt.store, job), fetch, signal: new AbortController().signal,
      runStart: new Date(), log: h.rt.log,
    };
  }

  /** The action's execution on one message, as the rules engine calls it. */
  function runAction(graph: GraphClient, message: { id: string }, value: typeof step.value, job?: string) {
    assert.equal(saveAttachments.execution.kind, 'call');
    if (saveAttachments.execution.kind !== 'call') return;
    return saveAttachments.execution.run(actionContext(graph, job), message as GraphMessage, { ...step, value });
  }

  const step = { rule: 'r', action: 'saveAttachments', value: { to: 'onedrive:/Big', types: ['pdf'], zone: 'UTC' } };
  const files = (under: string) => h.sandbox.admin.driveFiles(ALICE).filter((f) => f.path.startsWith(`${under}/`));

  test('a small file is a simple upload, a name that exists gets a numbered copy, each attachment once ever', async () => {
    h.sandbox.admin.setSimpleUploadMaxBytes(1024 * 1024);
    const mine = pdf(5000, 1);
    // Someone's own file already has the name: it stays as it is.
    const graph = recordingGraph();
    await graph.putBytes(`/me/drive/root:${folder}/invoice.pdf:/content`, Buffer.from('theirs'), 'application/pdf');
    h.sandbox.admin.deliver(ALICE, {
      subject: '[drive] receipts', from: 'shop@shop.example.com', receivedDateTime: received, attachments: [
        { name: 'invoice.pdf', contentType: 'application/pdf', content: mine },
        { name: 'notes.txt', contentType: 'text/plain', content: Buffer.from('not a pdf') },
      ],
    });
    const run = await h.rt.runner.run('drive', {});
    assert.equal(run.ok, true, run.error);
    assert.deepEqual(files(folder).map((f) => f.path), [`${folder}/invoice (1).pdf`, `${folder}/invoice.pdf`]);
    assert.equal(h.sandbox.admin.driveFileContent(ALICE, `${folder}/invoice.pdf`)!.toString(), 'theirs', 'never over a file');
    assert.ok(h.sandbox.admin.driveFileContent(ALICE, `${folder}/invoice (1).pdf`)!.equals(mine));
    // The same action on the same message again (a rules ledger lost, say): the attachment ledger saves nothing twice.
    uploads.length = 0;
    await runAction(recordingGraph(), { id: run.actions[0]!.messageId }, { to: 'onedrive:/Receipts/{yyyy}/{MM}', types: ['pdf'], zone: 'Pacific/Auckland' }, 'drive');
    assert.equal(files(folder).length, 2);
    assert.deepEqual(uploads, []);
  });

  test('a file over the simple-upload limit goes through an upload session in several ranges, without the token', async () => {
    h.sandbox.admin.setSimpleUploadMaxBytes(1024 * 1024);
    const big = pdf(7 * 1024 * 1024 + 123, 2);
    h.sandbox.admin.deliver(ALICE, {
      subject: '[drive] big', from: 'shop@shop.example.com', receivedDateTime: received,
      attachments: [{ name: 'scan.pdf', contentType: 'application/pdf', content: big }],
    });
    const run = await h.rt.runner.run('drive', {});
    assert.equal(run.ok, true, run.error);
    assert.ok(h.sandbox.admin.driveFileContent(ALICE, `${folder}/scan.pdf`)!.equals(big));
    // The runner's own transport is not observable here: the same upload through a recording client shows the ranges.
    uploads.length = 0;
    const graph = recordingGraph();
    const message = h.sandbox.admin.messages(ALICE, 'inbox').find((m) => m.subject === '[drive] big')!;
    await runAction(graph, message, step.value);
    assert.ok(h.sandbox.admin.driveFileContent(ALICE, '/Big/scan.pdf')!.equals(big));
    const puts = uploads.filter((u) => u.method === 'PUT');
    assert.deepEqual(puts.map((u) => u.range), ['bytes 0-3276799/7340155', 'bytes 3276800-6553599/7340155', 'bytes 6553600-7340154/7340155']);
    assert.ok(uploads.every((u) => !u.authorized), 'no Authorization header to the upload URL');
  });

  test('a crash in the middle of an upload session, then a rerun: exactly one file', async () => {
    h.sandbox.admin.setSimpleUploadMaxBytes(1024 * 1024);
    const big = pdf(5 * 1024 * 1024, 3);
    h.sandbox.admin.deliver(ALICE, {
      subject: '[drive] crash', from: 'shop@shop.example.com', receivedDateTime: received,
      attachments: [{ name: 'crash.pdf', contentType: 'application/pdf', content: big }],
    });
    const message = h.sandbox.admin.messages(ALICE, 'inbox').find((m) => m.subject === '[drive] crash')!;
    const run = (graph: GraphClient) => runAction(graph, message, step.value);
    uploads.length = 0;
    await assert.rejects(async () => run(recordingGraph(2)), /crashed mid-session/);
    assert.deepEqual(files('/Big').map((f) => f.path).filter((p) => /crash/.test(p)), [], 'nothing of the file before its last range');
    await run(recordingGraph());
    assert.deepEqual(files('/Big').map((f) => f.path).filter((p) => /crash/.test(p)), ['/Big/crash.pdf']);
    assert.ok(h.sandbox.admin.driveFileContent(ALICE, '/Big/crash.pdf')!.equals(big));
    // The interrupted session was cancelled before the upload started again.
    assert.ok(uploads.some((u) => u.method === 'DELETE'), JSON.stringify(uploads));
    // And a third run (the ledger says saved) uploads nothing more.
    uploads.length = 0;
    await run(recordingGraph());
    assert.deepEqual(uploads, []);
    assert.equal(files('/Big').filter((f) => /crash/.test(f.path)).length, 1);
  });

  test('an uploadUrl PUT with the Authorization header is refused by the sandbox (the check above can fail)', async () => {
    const graph = recordingGraph();
    const session = (await graph.post<{ uploadUrl: string }>('/me/drive/root:/Probe/x.pdf:/createUploadSession', { item: { '@microsoft.graph.conflictBehavior': 'fail' } })).body;
    const token = await h.rt.tokens.getAccessToken();
    const answer = await h.fetch(session.uploadUrl, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-range': 'bytes 0-2/3' }, body: 'abc' });
    assert.equal(answer.status, 401);
  });
});
