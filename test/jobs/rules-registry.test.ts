import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parseJobsFile } from '../../src/config/jobs-file.ts';
import { requiredPermissions } from '../../src/auth/permissions.ts';
import { ACTION_NAMES, ACTIONS } from '../../src/jobs/rules/actions/index.ts';
import { KEY_NAMES, MATCH_KEYS } from '../../src/jobs/rules/keys/index.ts';
import { REFERENCE_END, REFERENCE_START, renderRuleReference, withReference } from '../../src/jobs/rules/reference.ts';

const file = (rule: string) => `jobs:\n  - name: t\n    type: inbox-rules\n    schedule: "* * * * *"\n    rules:\n      - name: r\n${rule}`;

describe('rule registry', () => {
  it("README's rule reference is the registry's: every key and action with its example", async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    assert.equal(readme, withReference(readme), 'README.md is out of date: run node --import tsx src/jobs/rules/reference.ts --write');
    const section = readme.slice(readme.indexOf(REFERENCE_START), readme.indexOf(REFERENCE_END));
    for (const key of KEY_NAMES) assert.ok(section.includes(`- \`${MATCH_KEYS[key].readme.example}\``), key);
    for (const action of ACTION_NAMES) assert.ok(section.includes(`- \`${ACTIONS[action].readme.example}\``), action);
    assert.equal(renderRuleReference().split('\n').filter((l) => l.startsWith('- `')).length, KEY_NAMES.length + 1 + ACTION_NAMES.length);
  });

  it("each key's README example is a valid match of that key", () => {
    for (const key of KEY_NAMES) {
      const { example } = MATCH_KEYS[key].readme;
      assert.ok(example.startsWith(`${key}:`), `${key}: its example names it`);
      const job = parseJobsFile(file(`        match: { ${example} }\n        actions: [ { flag: true } ]\n`), 'a.yaml').jobs[0]!;
      assert.ok(job.type === 'inbox-rules' && key in job.rules[0]!.match, key);
    }
  });

  it("each action's README example is a valid action, and says what it needs", () => {
    for (const action of ACTION_NAMES) {
      const { example } = ACTIONS[action].readme;
      assert.ok(example.startsWith(`${action}:`), `${action}: its example names it`);
      const parsed = parseJobsFile(file(`        match: { isRead: false }\n        actions: [ { ${example} } ]\n`), 'a.yaml');
      const job = parsed.jobs[0]!;
      assert.ok(job.type === 'inbox-rules' && action in job.rules[0]!.actions[0]!, action);
      const need = ACTIONS[action].permission;
      if (need) assert.ok(requiredPermissions(parsed).needs.some((n) => n.permission === need.permission), `${action} needs ${need.permission}`);
    }
  });

  it('permissions come from the definitions: the reasons name the actions in registry order', () => {
    const parsed = parseJobsFile(file(`        match: { isRead: false }\n        actions: [ { forwardTo: a@example.com }, { flag: true }, { moveTo: X } ]\n`), 'a.yaml');
    const needs = requiredPermissions(parsed).needs;
    assert.deepEqual(needs.find((n) => n.permission === 'Mail.ReadWrite')?.because, ['t changes mail (moveTo, flag)']);
    assert.deepEqual(needs.find((n) => n.permission === 'Mail.Send')?.because, ['t forwards mail (forwardTo)']);
  });
});
