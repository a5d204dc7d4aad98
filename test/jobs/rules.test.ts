import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MatchSpec, Rule } from '../../src/config/jobs-file.ts';
import { explainRules, matches, needsBody, planActions, selectFor, stripHtml, toMessageView } from '../../src/jobs/rules.ts';
import type { MessageView } from '../../src/jobs/rules.ts';

const runStart = new Date('2024-06-15T12:00:00Z');

function view(overrides: Partial<MessageView> = {}): MessageView {
  return {
    id: 'm1',
    subject: 'Weekly digest',
    from: 'letters@news.example.com',
    toRecipients: ['me@example.com'],
    ccRecipients: [],
    receivedDateTime: '2024-06-15T08:00:00Z',
    hasAttachments: false,
    importance: 'normal',
    isRead: false,
    categories: [],
    bodyText: 'Hello there',
    flagged: false,
    ...overrides,
  };
}

function rule(name: string, match: MatchSpec, actions: Rule['actions'], stop = false): Rule {
  return { name, match, actions, stop };
}

describe('toMessageView', () => {
  it('maps a Graph message', () => {
    const v = toMessageView({
      id: 'AAMk1',
      subject: 'Invoice 42',
      from: { emailAddress: { name: 'Billing', address: 'billing@shop.example.com' } },
      sender: { emailAddress: { address: 'other@example.com' } },
      toRecipients: [{ emailAddress: { address: 'me@example.com' } }, { emailAddress: { name: 'no address' } }],
      ccRecipients: [{ emailAddress: { address: 'boss@example.com' } }],
      receivedDateTime: '2024-06-01T10:00:00Z',
      hasAttachments: true,
      importance: 'high',
      isRead: true,
      categories: ['Red', 'Finance'],
      flag: { flagStatus: 'flagged' },
      body: { contentType: 'html', content: '<p>Pay &amp; smile</p>' },
      bodyPreview: 'ignored',
    });
    assert.deepEqual(v, {
      id: 'AAMk1',
      subject: 'Invoice 42',
      from: 'billing@shop.example.com',
      toRecipients: ['me@example.com'],
      ccRecipients: ['boss@example.com'],
      receivedDateTime: '2024-06-01T10:00:00Z',
      hasAttachments: true,
      importance: 'high',
      isRead: true,
      categories: ['Red', 'Finance'],
      bodyText: 'Pay & smile',
      flagged: true,
    });
  });

  it('fills defaults for a sparse message and leaves bodyText undefined without a body', () => {
    const v = toMessageView({ id: 'x', subject: null, flag: { flagStatus: 'complete' } });
    assert.equal(v.subject, '');
    assert.equal(v.from, undefined);
    assert.equal('bodyText' in v, false);
    assert.deepEqual([v.toRecipients, v.ccRecipients, v.categories], [[], [], []]);
    assert.equal(v.importance, 'normal');
    assert.equal(v.isRead, false);
    assert.equal(v.flagged, false);
    assert.equal(v.hasAttachments, false);
  });

  it('keeps a text body as is (no tag stripping), whitespace collapsed', () => {
    const v = toMessageView({ id: 'x', body: { contentType: 'text', content: 'a <b>tag</b> &amp;\n\n  stays' } });
    assert.equal(v.bodyText, 'a <b>tag</b> &amp; stays');
  });

  it('strips an HTML body robustly', () => {
    const html = [
      '<!DOCTYPE html><html><head><title>T</title><style>p { color: red; }</style>',
      '<meta name="x" content="a>b"></head><body>',
      '<!-- secret comment <p>not shown</p> -->',
      '<script type="text/javascript">var urgent = "<b>";</script>',
      '<p>In<b>voice</b> &#8364;12 &#x41;&nbsp;&quot;q&quot; &#39;s&#39;</p>',
      '<div title="a > b">x &lt;y&gt; &amp;lt;</div>line<br>break',
      '<SCRIPT>alert(1)</SCRIPT>tail',
    ].join('\n');
    const v = toMessageView({ id: 'x', body: { contentType: 'HTML', content: html } });
    assert.equal(v.bodyText, `Invoice €12 A "q" 's' x <y> &lt; line break tail`);
  });

  it('stripHtml separates block elements and keeps inline ones joined', () => {
    assert.equal(stripHtml('<td>a</td><td>b</td>'), '\na\n\nb\n');
    assert.equal(stripHtml('un<i>break</i>able'), 'unbreakable');
    assert.equal(stripHtml('1 < 2 and 3 > 2'), '1 < 2 and 3 > 2');
    assert.equal(stripHtml('<a href="x>y">link</a><a href="unbalanced>z</a>'), 'linkz');
    assert.equal(stripHtml('&#0; &#xD800; &bogus; &AMP;'), '\uFFFD \uFFFD &bogus; &');
    assert.equal(stripHtml('<style>unclosed {'), ' ');
  });
});

describe('needsBody', () => {
  it('is true only when a rule uses bodyContains, also inside any', () => {
    assert.equal(needsBody([rule('a', { subjectContains: 'x' }, [{ flag: true }])]), false);
    assert.equal(needsBody([rule('a', { subjectContains: 'x' }, [{ flag: true }]), rule('b', { bodyContains: 'y' }, [{ flag: true }])]), true);
    assert.equal(needsBody([rule('a', { any: [{ isRead: true }, { any: [{ bodyContains: 'deep' }] }] }, [{ flag: true }])]), true);
    assert.equal(needsBody([]), false);
  });
});

describe('selectFor', () => {
  const base = ['subject', 'from', 'receivedDateTime', 'isRead', 'flag', 'categories', 'importance'];
  it('asks for recipients, attachments and the body only when a rule matches on them, also inside any', () => {
    assert.deepEqual(selectFor([rule('a', { fromDomain: 'x.example' }, [{ moveTo: 'X' }])]), base);
    assert.deepEqual(selectFor([]), base);
    assert.deepEqual(selectFor([rule('a', { to: 'me@x.example' }, [{ flag: true }]), rule('b', { any: [{ cc: 'c@x.example' }, { any: [{ hasAttachments: true }] }] }, [{ flag: true }])]), [...base, 'toRecipients', 'ccRecipients', 'hasAttachments']);
    assert.deepEqual(selectFor([rule('a', { bodyContains: 'y' }, [{ flag: true }])]), [...base, 'body']);
  });
  it('covers every field the rule engine reads for every match key', () => {
    const all = rule('all', { from: 'a@x', fromDomain: 'x', to: 'b@x', cc: 'c@x', subjectContains: 's', subjectMatches: 's', bodyContains: 'b', hasAttachments: true, importance: 'high', isRead: true, categories: 'c', olderThanDays: 1 }, [{ flag: true }]);
    const full = { id: '1', subject: 's', from: { emailAddress: { address: 'a@x' } }, toRecipients: [{ emailAddress: { address: 'b@x' } }], ccRecipients: [{ emailAddress: { address: 'c@x' } }], receivedDateTime: '2020-01-01T00:00:00Z', hasAttachments: true, importance: 'high', isRead: true, categories: ['c'], flag: { flagStatus: 'notFlagged' }, body: { contentType: 'text', content: 'b' } };
    const selected = Object.fromEntries(Object.entries(full).filter(([k]) => k === 'id' || selectFor([all]).includes(k)));
    assert.deepEqual(planActions([all], toMessageView(selected), new Date('2026-01-01T00:00:00Z')), planActions([all], toMessageView(full), new Date('2026-01-01T00:00:00Z')));
    assert.equal(planActions([all], toMessageView(selected), new Date('2026-01-01T00:00:00Z')).length, 1);
  });
});

describe('matches', () => {
  const m = (spec: MatchSpec, overrides: Partial<MessageView> = {}) => matches(spec, view(overrides), runStart);

  it('fromDomain matches the domain and its subdomains, not lookalikes', () => {
    const spec = { fromDomain: 'news.example.com' };
    assert.equal(m(spec, { from: 'a@news.example.com' }), true);
    assert.equal(m(spec, { from: 'a@mail.news.example.com' }), true);
    assert.equal(m(spec, { from: 'A@NEWS.Example.COM' }), true);
    assert.equal(m(spec, { from: 'a@evilnews.example.com' }), false);
    assert.equal(m(spec, { from: 'a@news.example.com.evil.io' }), false);
    assert.equal(m(spec, { from: 'news.example.com@evil.io' }), false);
    assert.equal(m(spec, { from: 'a@example.com' }), false);
    assert.equal(m(spec, { from: undefined }), false);
    assert.equal(m({ fromDomain: 'NEWS.example.com' }, { from: 'a@news.example.com' }), true);
    assert.equal(m({ fromDomain: ['other.org', 'example.com'] }, { from: 'a@news.example.com' }), true);
  });

  it('from compares the whole address, case-insensitively', () => {
    assert.equal(m({ from: 'Letters@News.Example.com' }), true);
    assert.equal(m({ from: 'letters@news.example' }), false);
    assert.equal(m({ from: 'etters@news.example.com' }), false);
    assert.equal(m({ from: ['x@y.z', 'letters@news.example.com'] }), true);
  });

  it('to and cc match when any recipient equals any given address', () => {
    assert.equal(m({ to: 'ME@example.com' }), true);
    assert.equal(m({ to: 'me@example.co' }), false);
    assert.equal(m({ cc: 'boss@example.com' }, { ccRecipients: ['a@b.c', 'Boss@Example.com'] }), true);
    assert.equal(m({ cc: ['x@y.z', 'a@b.c'] }, { ccRecipients: ['a@b.c'] }), true);
    assert.equal(m({ cc: 'me@example.com' }), false); // to is not cc
  });

  it('subjectContains is case-insensitive; a list means any of', () => {
    assert.equal(m({ subjectContains: 'DIGEST' }), true);
    assert.equal(m({ subjectContains: 'monthly' }), false);
    assert.equal(m({ subjectContains: ['monthly', 'weekly'] }), true);
  });

  it('subjectMatches is a case-insensitive JavaScript regex', () => {
    assert.equal(m({ subjectMatches: '^weekly\\s+DIGEST$' }), true);
    assert.equal(m({ subjectMatches: '^digest' }), false);
    assert.equal(m({ subjectMatches: ['^nope', 'dig.st'] }), true);
    // The same pattern twice (cache) must not keep lastIndex state.
    assert.equal(m({ subjectMatches: 'weekly' }), true);
    assert.equal(m({ subjectMatches: 'weekly' }), true);
  });

  it('bodyContains searches the whole body, whitespace- and case-insensitively', () => {
    assert.equal(m({ bodyContains: 'QUARTERLY report' }, { bodyText: 'see the quarterly report attached' }), true);
    assert.equal(m({ bodyContains: 'quarterly report' }, { bodyText: 'the quarterly\n\n  report' }), true);
    assert.equal(m({ bodyContains: 'quarterly report' }, { bodyText: 'the quarterly reports' }), true);
    assert.equal(m({ bodyContains: 'annual' }, { bodyText: 'the quarterly report' }), false);
  });

  it('throws a programming error when bodyContains meets a message fetched without body', () => {
    assert.throws(() => m({ bodyContains: 'x' }, { bodyText: undefined }), /bodyContains needs the message body.*needsBody/);
    assert.equal(m({ subjectContains: 'weekly' }, { bodyText: undefined }), true);
  });

  it('boolean, importance and category keys', () => {
    assert.equal(m({ hasAttachments: true }), false);
    assert.equal(m({ hasAttachments: false }), true);
    assert.equal(m({ isRead: false }), true);
    assert.equal(m({ isRead: true }), false);
    assert.equal(m({ importance: 'normal' }), true);
    assert.equal(m({ importance: ['low', 'high'] }), false);
    assert.equal(m({ importance: ['low', 'high'] }, { importance: 'high' }), true);
    assert.equal(m({ categories: 'red' }, { categories: ['Blue', 'Red'] }), true);
    assert.equal(m({ categories: ['green', 'blue'] }, { categories: ['Blue'] }), true);
    assert.equal(m({ categories: 'red' }), false);
  });

  it('olderThanDays compares receivedDateTime with the run start, boundary included', () => {
    const exactly = '2024-06-12T12:00:00.000Z'; // runStart - 3 days
    assert.equal(m({ olderThanDays: 3 }, { receivedDateTime: exactly }), true);
    assert.equal(m({ olderThanDays: 3 }, { receivedDateTime: '2024-06-12T12:00:00.001Z' }), false);
    assert.equal(m({ olderThanDays: 3 }, { receivedDateTime: '2024-06-12T11:59:59.999Z' }), true);
    assert.equal(m({ olderThanDays: 0 }, { receivedDateTime: runStart.toISOString() }), true);
    assert.equal(m({ olderThanDays: 0 }, { receivedDateTime: '2024-06-15T12:00:01Z' }), false);
    assert.equal(m({ olderThanDays: 0 }, { receivedDateTime: 'not a date' }), false);
  });

  it('all given keys must hold; any is an OR of sub-specs', () => {
    assert.equal(m({ fromDomain: 'news.example.com', subjectContains: 'weekly' }), true);
    assert.equal(m({ fromDomain: 'news.example.com', subjectContains: 'monthly' }), false);
    assert.equal(m({ any: [{ subjectContains: 'monthly' }, { isRead: false }] }), true);
    assert.equal(m({ any: [{ subjectContains: 'monthly' }, { isRead: true }] }), false);
    assert.equal(m({ isRead: true, any: [{ subjectContains: 'weekly' }] }), false);
    assert.equal(m({ any: [{ any: [{ from: 'nobody@x.y' }, { subjectContains: 'weekly', isRead: false }] }] }), true);
    assert.equal(m({ any: [] }), false);
  });
});

describe('planActions', () => {
  const plan = (rules: Rule[], overrides: Partial<MessageView> = {}) =>
    planActions(rules, view(overrides), runStart).map((p) => [p.rule, p.action, p.value]);

  it('applies every matching rule in order', () => {
    const rules = [
      rule('a', { isRead: false }, [{ flag: true }]),
      rule('skip', { isRead: true }, [{ setImportance: 'high' }]),
      rule('b', { subjectContains: 'weekly' }, [{ categorize: ['News'] }, { setImportance: 'low' }]),
    ];
    assert.deepEqual(plan(rules), [
      ['a', 'flag', true],
      ['b', 'categorize', ['News']],
      ['b', 'setImportance', 'low'],
    ]);
  });

  it('stops after a matching rule with stop: true, its actions included', () => {
    const rules = [
      rule('a', { isRead: false }, [{ flag: true }], true),
      rule('b', { isRead: false }, [{ markRead: true }]),
    ];
    assert.deepEqual(plan(rules), [['a', 'flag', true]]);
  });

  it('a non-matching rule with stop: true does not stop', () => {
    const rules = [
      rule('a', { isRead: true }, [{ flag: true }], true),
      rule('b', { isRead: false }, [{ markRead: true }]),
    ];
    assert.deepEqual(plan(rules), [['b', 'markRead', true]]);
  });

  it('plans the move last, after copies and every other action', () => {
    const rules = [
      rule('news', { fromDomain: 'news.example.com' }, [{ moveTo: 'Newsletters' }, { markRead: true }]),
      rule('copy', { isRead: false }, [{ copyTo: 'Archive/All' }, { flag: true }]),
    ];
    assert.deepEqual(plan(rules), [
      ['news', 'markRead', true],
      ['copy', 'copyTo', 'Archive/All'],
      ['copy', 'flag', true],
      ['news', 'moveTo', 'Newsletters'],
    ]);
  });

  it('only the first move counts; delete is a move', () => {
    const rules = [
      rule('first', { isRead: false }, [{ delete: true }]),
      rule('second', { isRead: false }, [{ moveTo: 'Elsewhere' }, { flag: true }]),
    ];
    assert.deepEqual(plan(rules), [
      ['second', 'flag', true],
      ['first', 'delete', true],
    ]);
    const rules2 = [rule('a', { isRead: false }, [{ moveTo: 'A' }]), rule('b', { isRead: false }, [{ delete: true }])];
    assert.deepEqual(plan(rules2), [['a', 'moveTo', 'A']]);
  });

  it('categorize adds only categories the message lacks, and nothing when all are present', () => {
    const rules = [
      rule('a', { isRead: false }, [{ categorize: ['red', 'News'] }]),
      rule('b', { isRead: false }, [{ categorize: ['news', 'Blue'] }]),
      rule('c', { isRead: false }, [{ categorize: ['Red'] }]),
    ];
    assert.deepEqual(plan(rules, { categories: ['Red'] }), [
      ['a', 'categorize', ['News']],
      ['b', 'categorize', ['Blue']],
    ]);
    assert.deepEqual(plan([rule('a', { isRead: false }, [{ categorize: ['Red'] }])], { categories: ['Red'] }), []);
  });

  it('skips markRead, flag and setImportance that change nothing', () => {
    const rules = [rule('a', { subjectContains: 'weekly' }, [{ markRead: true }, { flag: true }, { setImportance: 'high' }])];
    assert.deepEqual(plan(rules, { isRead: true, flagged: true, importance: 'high' }), []);
    assert.deepEqual(plan(rules, { isRead: true, flagged: false, importance: 'high' }), [['a', 'flag', true]]);
    assert.deepEqual(plan([rule('a', { subjectContains: 'weekly' }, [{ markRead: false }, { flag: false }])], { isRead: true, flagged: true }), [
      ['a', 'markRead', false],
      ['a', 'flag', false],
    ]);
  });

  it('merges identical actions under the first rule, and follows the planned state', () => {
    const rules = [
      rule('a', { isRead: false }, [{ flag: true }, { webhook: 'https://h.example/x' }, { copyTo: 'Keep' }]),
      rule('b', { isRead: false }, [{ flag: true }, { webhook: 'https://h.example/x' }, { copyTo: 'keep' }, { markRead: true }]),
      rule('c', { isRead: false }, [{ markRead: false }, { markRead: true }]),
    ];
    assert.deepEqual(plan(rules), [
      ['a', 'flag', true],
      ['a', 'webhook', 'https://h.example/x'],
      ['a', 'copyTo', 'Keep'],
      ['b', 'markRead', true],
      ['c', 'markRead', false],
      ['c', 'markRead', true],
    ]);
  });

  it('forwards once per address', () => {
    const rules = [
      rule('a', { isRead: false }, [{ forwardTo: 'x@example.com' }]),
      rule('b', { isRead: false }, [{ forwardTo: ['X@example.com', 'y@example.com', 'y@example.com'] }]),
      rule('c', { isRead: false }, [{ forwardTo: ['y@example.com'] }]),
    ];
    assert.deepEqual(plan(rules), [
      ['a', 'forwardTo', ['x@example.com']],
      ['b', 'forwardTo', ['y@example.com']],
    ]);
  });

  it('matches see the message as it was before the run', () => {
    const rules = [
      rule('read-it', { isRead: false }, [{ markRead: true }, { categorize: ['Seen'] }, { moveTo: 'Later' }]),
      rule('still-unread', { isRead: false }, [{ flag: true }]),
      rule('not-yet-seen', { categories: 'Seen' }, [{ setImportance: 'low' }]),
    ];
    assert.deepEqual(plan(rules), [
      ['read-it', 'markRead', true],
      ['read-it', 'categorize', ['Seen']],
      ['still-unread', 'flag', true],
      ['read-it', 'moveTo', 'Later'],
    ]);
  });

  it('does not mutate the message view', () => {
    const msg = view();
    const before = structuredClone(msg);
    planActions([rule('a', { isRead: false }, [{ markRead: true }, { categorize: ['X'] }, { flag: true }])], msg, runStart);
    assert.deepEqual(msg, before);
  });

  it('refuses to plan without the body when a rule needs it, even if that rule is never reached', () => {
    const rules = [rule('stopper', { isRead: false }, [{ flag: true }], true), rule('body', { bodyContains: 'x' }, [{ flag: true }])];
    assert.throws(() => plan(rules, { bodyText: undefined }), /fetched without its body/);
    assert.deepEqual(plan(rules), [['stopper', 'flag', true]]);
  });

  it('plans nothing when no rule matches', () => {
    assert.deepEqual(plan([rule('a', { isRead: true }, [{ delete: true }])]), []);
  });
});

describe('explainRules', () => {
  it('names the deciding key of every rule, matched or not, and what a stop hides', () => {
    const rules = [
      rule('invoices', { subjectMatches: '^Invoice' }, [{ categorize: ['Finance'] }]),
      rule('news', { fromDomain: 'news.example.com', isRead: false }, [{ moveTo: 'News' }], true),
      rule('later', { isRead: false }, [{ flag: true }]),
    ];
    const out = explainRules(rules, view({ subject: 'Re: invoice' }), runStart);
    assert.deepEqual(out.map((r) => [r.rule, r.matched, r.because]), [
      ['invoices', false, "subjectMatches ^Invoice did not match 'Re: invoice'"],
      ['news', true, 'fromDomain news.example.com matched sender letters@news.example.com; isRead false matched (the message is unread)'],
      ['later', false, 'not looked at: an earlier matching rule has stop: true'],
    ]);
    assert.deepEqual(out[1]!.actions.map((a) => [a.action, a.value]), [['moveTo', 'News']]);
  });

  it('explains any: the sub-match that held, or why none did', () => {
    const any = rule('any', { any: [{ from: 'x@example.com' }, { subjectContains: 'weekly' }] }, [{ flag: true }]);
    assert.equal(explainRules([any], view(), runStart)[0]!.because, "any[1]: subjectContains weekly matched 'Weekly digest'");
    const none = explainRules([any], view({ subject: 'Hi' }), runStart)[0]!;
    assert.equal(none.matched, false);
    assert.equal(none.because, "any: none matched ([0] from x@example.com did not match sender letters@news.example.com | [1] subjectContains weekly did not match 'Hi')");
  });

  it('planActions with explain gives each step its rule\'s reason; without, none', () => {
    const rules = [rule('news', { fromDomain: 'news.example.com' }, [{ markRead: true }])];
    assert.deepEqual(planActions(rules, view(), runStart, { explain: true }), [{ rule: 'news', action: 'markRead', value: true, because: 'fromDomain news.example.com matched sender letters@news.example.com' }]);
    assert.deepEqual(planActions(rules, view(), runStart), [{ rule: 'news', action: 'markRead', value: true }]);
  });
});
