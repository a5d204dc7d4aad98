import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { GraphClient } from '../../src/graph/client.ts';
import { Mailbox, type GraphMessage } from '../../src/graph/mailbox.ts';
import type { ActionContext } from '../../src/jobs/rules/definition.ts';
import { saveAttachments } from '../../src/jobs/rules/actions/save-attachments.ts';

/**
 * saveAttachments to a local folder after a `kill -9` (found by the proof suite's crash scenario,
 * test/proof/crash-scenario.ts): the next run must save the attachment, once, and leave nothing else behind.
 */

const MESSAGE = { id: 'm1', receivedDateTime: '2026-01-01T00:00:00Z' } as GraphMessage;

/** A Graph that serves one message with one attachment `name` holding `bytes`. */
function graphWith(name: string, bytes: Buffer): GraphClient {
  return {
    get: async (url: string) => (url.includes('/attachments?')
      ? { body: { value: [{ '@odata.type': '#microsoft.graph.fileAttachment', id: 'a1', name, contentType: 'application/pdf', size: bytes.length, isInline: false }] } }
      : { body: { contentBytes: bytes.toString('base64') } }),
  } as unknown as GraphClient;
}

/** A job store kept in `data`; `hangOn`: a write of a key starting so never returns (the process dies there). */
function storeIn(data: Map<string, unknown>, hangOn?: string) {
  return {
    get: async (key: string) => data.get(key),
    set: async (key: string, value: unknown) => {
      if (hangOn && key.startsWith(hangOn)) return new Promise<never>(() => undefined);
      data.set(key, value);
    },
    delete: async (key: string) => void data.delete(key),
  };
}

function contextFor(graph: GraphClient, store: ReturnType<typeof storeIn>): ActionContext {
  return { job: 'files', mailbox: new Mailbox(graph, '/me'), graph, store, runStart: new Date(), log: console } as unknown as ActionContext;
}

const run = (ctx: ActionContext, dir: string) => {
  assert.ok(saveAttachments.execution.kind === 'call');
  return saveAttachments.execution.run(ctx, MESSAGE, { rule: 'r', action: 'saveAttachments', value: { to: dir, zone: 'UTC' } });
};

describe('saveAttachments to a local folder, after a crash', () => {
  it('a run killed after it noted a taken name (same size, another message\'s file) saves its own bytes as a numbered copy, not that file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ma-save-'));
    // Another message's "terms.pdf", as long as ours but other bytes; the killed run had noted that name before
    // its link found it taken (saveLocal notes each name it tries, then links).
    writeFileSync(path.join(dir, 'terms.pdf'), 'other bytes');
    const ours = Buffer.from('our terms!!');
    assert.equal(ours.length, 'other bytes'.length);
    const data = new Map<string, unknown>([[`saving:m1:a1:${dir}`, path.join(dir, 'terms.pdf')]]);
    await run(contextFor(graphWith('terms.pdf', ours), storeIn(data)), dir);
    assert.deepEqual(readdirSync(dir).sort(), ['terms (1).pdf', 'terms.pdf']);
    assert.equal(readFileSync(path.join(dir, 'terms (1).pdf'), 'utf8'), 'our terms!!');
    assert.equal(readFileSync(path.join(dir, 'terms.pdf'), 'utf8'), 'other bytes');
    assert.equal(data.get(`saved:m1:a1:${dir}`), path.join(dir, 'terms (1).pdf'), 'the ledger names our own file');
  });

  it('a run killed after writing its temporary file leaves no .part file once the next run has saved the attachment', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ma-save-'));
    const bytes = Buffer.from('%PDF invoice');
    const data = new Map<string, unknown>();
    // The first run dies as it notes the name (its temporary file is written; no finally block runs in a kill).
    void run(contextFor(graphWith('invoice.pdf', bytes), storeIn(data, 'saving:')), dir);
    for (let i = 0; i < 100 && !readdirSync(dir).some((f) => f.endsWith('.part')); i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(readdirSync(dir).some((f) => f.endsWith('.part')), 'the killed run left its temporary file');
    await run(contextFor(graphWith('invoice.pdf', bytes), storeIn(data)), dir);
    assert.deepEqual(readdirSync(dir), ['invoice.pdf']);
    assert.equal(readFileSync(path.join(dir, 'invoice.pdf'), 'utf8'), '%PDF invoice');
  });
});
