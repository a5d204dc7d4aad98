import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderReply } from '../../src/jobs/rules/actions/reply.ts';
import { expandDatePlaceholders, safeFileName } from '../../src/jobs/rules/actions/save-attachments.ts';
import { snoozeUntil } from '../../src/jobs/rules/actions/snooze.ts';
import { globRegex, typeMatches } from '../../src/jobs/rules/keys/attachments.ts';

describe('snoozeUntil', () => {
  const now = new Date('2026-03-26T10:30:00Z'); // a Thursday
  it('adds a duration', () => {
    assert.equal(snoozeUntil('2d', now, 'UTC')!.toISOString(), '2026-03-28T10:30:00.000Z');
    assert.equal(snoozeUntil('90m', now, 'UTC')!.toISOString(), '2026-03-26T12:00:00.000Z');
    assert.equal(snoozeUntil('1w', now, 'UTC')!.toISOString(), '2026-04-02T10:30:00.000Z');
  });
  it('finds the next weekday at a clock time in the zone, across a DST change', () => {
    // Europe/Berlin moves to summer time on Sunday 2026-03-29: Monday 08:00 is 06:00 UTC, Thursday 08:00 was 07:00.
    assert.equal(snoozeUntil('next monday 08:00', now, 'Europe/Berlin')!.toISOString(), '2026-03-30T06:00:00.000Z');
    assert.equal(snoozeUntil('monday', now, 'Europe/Berlin')!.toISOString(), '2026-03-30T06:00:00.000Z');
    assert.equal(snoozeUntil('tomorrow 7:15', now, 'America/New_York')!.toISOString(), '2026-03-27T11:15:00.000Z');
    // The same weekday means a week later, never today.
    assert.equal(snoozeUntil('thursday 09:00', now, 'UTC')!.toISOString(), '2026-04-02T09:00:00.000Z');
  });
  it('refuses what is not a snooze time', () => {
    for (const bad of ['soon', '2 days', 'next monday 25:00', 'monday 8', '']) assert.equal(snoozeUntil(bad, now, 'UTC'), undefined, bad);
  });
});

describe('saveAttachments file names', () => {
  it('keeps a name inside its folder and usable everywhere', () => {
    assert.equal(safeFileName('../../etc/passwd'), 'passwd');
    assert.equal(safeFileName('..\\..\\boot.ini'), 'boot.ini');
    assert.equal(safeFileName('a:b*c?.pdf'), 'a_b_c_.pdf');
    assert.equal(safeFileName('.hidden'), 'hidden');
    assert.equal(safeFileName('..'), 'attachment');
    assert.equal(safeFileName('CON.txt'), '_CON.txt');
    assert.equal(safeFileName(`${'x'.repeat(300)}.pdf`).length, 200);
    assert.ok(safeFileName(`${'x'.repeat(300)}.pdf`).endsWith('.pdf'));
  });
  it('fills {yyyy}, {MM}, {dd} from the received date', () => {
    assert.equal(expandDatePlaceholders('/r/{yyyy}/{MM}/{dd}', '2026-02-03T23:59:00Z'), '/r/2026/02/03');
  });
});

describe('attachment patterns', () => {
  it('globs are whole-name and case-insensitive; types are extensions or MIME types', () => {
    assert.ok(globRegex('*.PDF').test('invoice.pdf'));
    assert.ok(!globRegex('*.pdf').test('invoice.pdf.exe'));
    assert.ok(globRegex('scan-??.png').test('Scan-01.png'));
    assert.ok(globRegex('a+b (1).txt').test('a+b (1).txt'));
    const a = { name: 'Photo.JPG', contentType: 'image/jpeg; name=x', size: 1, isInline: false };
    assert.ok(typeMatches('jpg', a) && typeMatches('.jpg', a) && typeMatches('image/*', a) && typeMatches('image/jpeg', a));
    assert.ok(!typeMatches('png', a) && !typeMatches('application/*', a));
  });
});

describe('renderReply', () => {
  const m = { name: 'Dana <Buyer>', address: 'dana@x.test', subject: '"Hi" & <b>', receivedDateTime: '2026-01-01T00:00:00Z' };
  it('escapes every value and, for a text template, the template too', () => {
    assert.equal(renderReply({ html: false }, 'Hi {{sender.name}}\n<{{subject}}> {{ unknown }}', m), 'Hi Dana &lt;Buyer&gt;<br>\n&lt;&quot;Hi&quot; &amp; &lt;b&gt;&gt; {{ unknown }}');
    assert.equal(renderReply({ html: true }, '<p>{{sender.address}}</p>', m), '<p>dana@x.test</p>');
  });
});
