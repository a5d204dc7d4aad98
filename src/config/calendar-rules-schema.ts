/**
 * The `calendar-rules` job of the jobs file: its types and its validation. src/config/jobs-file.ts hands a
 * job with `type: calendar-rules` to checkCalendarRulesJob together with its own checking tools, so problems
 * carry the same line numbers, key paths, "did you mean" hints and fixes as inbox rules. This file imports
 * nothing from jobs-file.ts at run time (jobs-file.ts reads CALENDAR_JOB_KEYS when it loads).
 */

export type CalendarAnswer = 'accept' | 'tentative' | 'decline';
export type MyResponse = 'none' | 'organizer' | 'accepted' | 'tentative' | 'declined';
export type ShowAs = 'free' | 'tentative' | 'busy' | 'oof' | 'workingElsewhere';

export type CalendarMatchSpec = {
  organizer?: string | string[];
  organizerDomain?: string | string[];
  subjectContains?: string | string[];
  subjectMatches?: string | string[];
  attendeesMoreThan?: number;
  isOnlineMeeting?: boolean;
  responseRequested?: boolean;
  myResponse?: MyResponse | MyResponse[];
  outsideWorkingHours?: boolean;
  conflicts?: boolean;
  isRecurring?: boolean;
  changed?: boolean;
  any?: CalendarMatchSpec[];
};

export type CalendarAction =
  | { respond: { response: CalendarAnswer; comment?: string; sendResponse: boolean } }
  | { categorize: string[] }
  | { showAs: ShowAs }
  | { reminderMinutes: number }
  | { webhook: string }
  /** `true`: a line saying which event matched which rule; text: that text. */
  | { notify: true | string };

export interface CalendarRule {
  name: string;
  match: CalendarMatchSpec;
  actions: CalendarAction[];
  stop: boolean;
  /** `master` (default): a series is answered and changed once, through its series master; `each`: per occurrence. */
  occurrences: 'master' | 'each';
}

export interface CalendarRulesJob {
  name: string;
  type: 'calendar-rules';
  schedule: string;
  /** How far ahead the job looks, in days (`window: 30d`). */
  windowDays: number;
  /** Overrides mailboxSettings.workingHours for `outsideWorkingHours` (times in the file's timezone, else the mailbox's). */
  workingHours?: { days: string[]; start: string; end: string };
  rules: CalendarRule[];
}

export const CALENDAR_MATCH_KEYS = [
  'organizer', 'organizerDomain', 'subjectContains', 'subjectMatches', 'attendeesMoreThan', 'isOnlineMeeting',
  'responseRequested', 'myResponse', 'outsideWorkingHours', 'conflicts', 'isRecurring', 'changed', 'any',
] as const;
export type CalendarMatchKey = Exclude<(typeof CALENDAR_MATCH_KEYS)[number], 'any'>;
export const CALENDAR_ACTION_KEYS = ['respond', 'categorize', 'showAs', 'reminderMinutes', 'webhook', 'notify'] as const;
export type CalendarActionName = (typeof CALENDAR_ACTION_KEYS)[number];
/** Whether an action changes the calendar (so the job needs Calendars.ReadWrite rather than Calendars.Read). */
export const CALENDAR_ACTION_WRITES: { [K in CalendarActionName]: boolean } = {
  respond: true, categorize: true, showAs: true, reminderMinutes: true, webhook: false, notify: false,
};
/** Keys of a calendar-rules job besides name, type and schedule. */
export const CALENDAR_JOB_KEYS = ['window', 'workingHours', 'rules'] as const;

const ANSWERS: readonly CalendarAnswer[] = ['accept', 'tentative', 'decline'];
const MY_RESPONSES: readonly MyResponse[] = ['none', 'organizer', 'accepted', 'tentative', 'declined'];
const SHOW_AS: readonly ShowAs[] = ['free', 'tentative', 'busy', 'oof', 'workingElsewhere'];
const DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
const RULE_KEYS = ['name', 'match', 'actions', 'stop', 'occurrences'];
const MAX_WINDOW_DAYS = 180;
const README = 'README "Calendar rules"';

type Segment = string | number;
type Obj = Record<string, unknown>;

/** What jobs-file.ts lends: its problem list and the helpers every key of the file is checked with. */
export interface CheckTools {
  add(at: Segment[], message: string, where?: 'key' | 'value'): void;
  unknownKeys(obj: Obj, at: Segment[], allowed: readonly string[], what: string, elsewhere?: (key: string) => string | undefined): void;
  /** A string or a non-empty list of non-empty strings (reports the problem itself). */
  textList(v: unknown, at: Segment[], key: string): string[] | undefined;
  boolean(raw: Obj, at: Segment[], key: string, fallback: boolean, meaning: string): boolean;
  suggest(input: string, candidates: readonly string[]): string | undefined;
  describe(v: unknown): string;
  /** The regex flags subjectMatches is compiled with. */
  regexFlags: string;
  problemCount(): number;
}

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isAddress = (s: string) => /^[^\s@]+@[^\s@]+$/.test(s);

/**
 * The job's own keys (name and schedule are checked by the caller and passed in).
 * @example checkCalendarRulesJob(raw, ['jobs', 1], { name: 'meetings', schedule: '*\/10 * * * *' }, tools)
 */
export function checkCalendarRulesJob(raw: Obj, at: Segment[], base: { name?: string; schedule?: string }, t: CheckTools): CalendarRulesJob | undefined {
  const before = t.problemCount();
  const windowDays = checkWindow(raw.window, [...at, 'window'], t);
  const workingHours = raw.workingHours === undefined ? undefined : checkWorkingHours(raw.workingHours, [...at, 'workingHours'], t);
  let rules: CalendarRule[] | undefined;
  if (raw.rules === undefined) {
    t.add(at, `a calendar-rules job needs rules:. Fix: add a list of rules, each with name:, match: and actions:, e.g. match: { organizer: boss@example.com } and actions: [ { respond: accept } ] (see ${README}).`);
  } else if (!Array.isArray(raw.rules) || raw.rules.length === 0) {
    t.add([...at, 'rules'], `rules must be a non-empty list, but it is ${t.describe(raw.rules)}${Array.isArray(raw.rules) ? ' that is empty' : ''}. Fix: add at least one rule with name:, match: and actions:.`);
  } else {
    const list = raw.rules.map((r, i) => checkRule(r, [...at, 'rules', i], t));
    if (list.every((r) => r !== undefined)) rules = list as CalendarRule[];
  }
  if (t.problemCount() !== before || base.name === undefined || base.schedule === undefined || rules === undefined || windowDays === undefined) return undefined;
  return { name: base.name, type: 'calendar-rules', schedule: base.schedule, windowDays, ...(workingHours ? { workingHours } : {}), rules };
}

function checkWindow(v: unknown, at: Segment[], t: CheckTools): number | undefined {
  if (v === undefined) return 30;
  const m = typeof v === 'string' ? /^\s*(\d+)\s*d\s*$/i.exec(v) : undefined;
  const days = m ? Number(m[1]) : NaN;
  if (!Number.isInteger(days) || days < 1 || days > MAX_WINDOW_DAYS) {
    t.add(at, `window must be a number of days ahead between 1d and ${MAX_WINDOW_DAYS}d, written like 30d, but it is ${t.describe(v)}. Fix: e.g. window: 30d.`);
    return undefined;
  }
  return days;
}

function checkWorkingHours(v: unknown, at: Segment[], t: CheckTools): CalendarRulesJob['workingHours'] {
  if (!isObject(v)) {
    t.add(at, `workingHours must be a mapping, but it is ${t.describe(v)}. Fix: e.g. workingHours: { start: "08:00", end: "18:00", days: [monday, tuesday, wednesday, thursday, friday] }, or remove it to use the mailbox's working hours.`);
    return undefined;
  }
  t.unknownKeys(v, at, ['start', 'end', 'days'], 'workingHours');
  const time = (key: 'start' | 'end'): string | undefined => {
    const s = v[key];
    if (typeof s !== 'string' || !/^([01]\d|2[0-3]):[0-5]\d$/.test(s.trim())) {
      t.add(s === undefined ? at : [...at, key], `workingHours.${key} must be a time written "HH:MM" in quotes, but it is ${t.describe(s)}. Fix: e.g. ${key}: "${key === 'start' ? '08:00' : '18:00'}".`);
      return undefined;
    }
    return s.trim();
  };
  const start = time('start');
  const end = time('end');
  if (start && end && end <= start) t.add([...at, 'end'], `workingHours.end (${end}) is not after start (${start}). Fix: give an end later in the day than the start.`);
  let days = DAYS.slice(1, 6);
  if (v.days !== undefined) {
    const list = t.textList(v.days, [...at, 'days'], 'days');
    if (list) {
      const bad = list.find((d) => !DAYS.includes(d.trim().toLowerCase()));
      if (bad !== undefined) {
        const close = t.suggest(bad, DAYS);
        t.add([...at, 'days'], `${JSON.stringify(bad)} is not a day of the week. Fix: ${close ? `did you mean "${close}"? ` : ''}write days in English, e.g. days: [monday, tuesday, wednesday, thursday, friday].`);
      } else days = list.map((d) => d.trim().toLowerCase());
    }
  }
  return start && end ? { days, start, end } : undefined;
}

function checkRule(raw: unknown, at: Segment[], t: CheckTools): CalendarRule | undefined {
  if (!isObject(raw)) {
    t.add(at, `a rule must be a mapping with name:, match: and actions:, but it is ${t.describe(raw)}. Fix: e.g. - name: one-on-ones\n        match: { organizer: boss@example.com }\n        actions: [ { respond: accept } ].`);
    return undefined;
  }
  const before = t.problemCount();
  t.unknownKeys(raw, at, RULE_KEYS, 'a calendar rule', (key) => {
    if ((CALENDAR_MATCH_KEYS as readonly string[]).includes(key)) return `"${key}" is a condition: put it under match:, e.g. match: { ${key}: … }.`;
    if ((CALENDAR_ACTION_KEYS as readonly string[]).includes(key)) return `"${key}" is an action: put it in the actions: list, e.g. actions: [ { ${key}: … } ].`;
    return undefined;
  });
  let name: string | undefined;
  if (typeof raw.name !== 'string' || raw.name.trim() === '') {
    t.add(raw.name === undefined ? at : [...at, 'name'], `the rule has no name. Fix: add name: (e.g. name: one-on-ones); the run report says which rule acted.`);
  } else name = raw.name;
  let match: CalendarMatchSpec | undefined;
  if (raw.match === undefined) t.add(at, `the rule has no match:. Fix: add the conditions an event must meet, e.g. match: { organizer: boss@example.com }.`);
  else match = checkMatch(raw.match, [...at, 'match'], t);
  const actions = checkActions(raw.actions, at, t);
  const stop = t.boolean(raw, at, 'stop', false, 'true (later rules do not see an event this rule matched) or false');
  let occurrences: CalendarRule['occurrences'] = 'master';
  if (raw.occurrences !== undefined) {
    if (raw.occurrences === 'each' || raw.occurrences === 'master') occurrences = raw.occurrences;
    else t.add([...at, 'occurrences'], `occurrences must be each or master, but it is ${t.describe(raw.occurrences)}. Fix: write occurrences: each to act on every occurrence of a series on its own, or leave it out to act once on the series.`);
  }
  if (t.problemCount() !== before || name === undefined || match === undefined || actions === undefined) return undefined;
  return { name, match, actions, stop, occurrences };
}

function checkMatch(raw: unknown, at: Segment[], t: CheckTools): CalendarMatchSpec | undefined {
  if (!isObject(raw)) {
    t.add(at, `match must be a mapping of conditions, but it is ${t.describe(raw)}. Fix: e.g. match: { organizer: boss@example.com }.`);
    return undefined;
  }
  if (Object.keys(raw).length === 0) {
    t.add(at, `an empty match: {} would match every event. Fix: add a condition; for every invitation still unanswered write match: { myResponse: none }.`);
    return undefined;
  }
  const before = t.problemCount();
  t.unknownKeys(raw, at, CALENDAR_MATCH_KEYS, 'the match of a calendar rule', (key) => {
    if ((CALENDAR_ACTION_KEYS as readonly string[]).includes(key)) return `"${key}" is an action, not a condition: put it in the rule's actions: list.`;
    if (key === 'from' || key === 'fromDomain') return `calendar rules look at the organizer: write ${key === 'from' ? 'organizer' : 'organizerDomain'}:.`;
    if (key === 'stop' || key === 'name' || key === 'occurrences') return `"${key}" belongs to the rule: move it out of match:, one level up.`;
    return undefined;
  });
  const spec: CalendarMatchSpec = {};
  const text = (key: 'organizer' | 'organizerDomain' | 'subjectContains' | 'subjectMatches', check?: (s: string, p: Segment[]) => void) => {
    const v = raw[key];
    if (v === undefined) return;
    const list = t.textList(v, [...at, key], key);
    if (!list) return;
    list.forEach((s, i) => check?.(s.trim(), Array.isArray(v) ? [...at, key, i] : [...at, key]));
    spec[key] = v as string | string[];
  };
  text('organizer', (s, p) => {
    if (!isAddress(s)) t.add(p, `organizer compares the organizer's whole address, and ${JSON.stringify(s)} is not one. Fix: write e.g. organizer: boss@example.com${s.includes('.') && !s.includes('@') ? `, or organizerDomain: ${s.replace(/^@/, '')} for a domain` : ''}.`);
  });
  text('organizerDomain', (s, p) => {
    if (s.includes('@')) t.add(p, `organizerDomain takes a domain, and ${JSON.stringify(s)} contains "@". Fix: write organizerDomain: ${s.slice(s.lastIndexOf('@') + 1)}, or organizer: ${s} for that one address.`);
    else if (!/^[^\s/:*]+\.[^\s/:*]+$/.test(s.replace(/^\.+/, '')) || s.startsWith('*')) t.add(p, `${JSON.stringify(s)} is not a domain name (subdomains already match). Fix: write a domain such as example.com.`);
  });
  text('subjectContains');
  text('subjectMatches', (s, p) => {
    try {
      new RegExp(s, t.regexFlags);
    } catch (error) {
      t.add(p, `invalid regular expression (${(error as Error).message}). Fix: correct the pattern (JavaScript syntax; escape ( ) [ ] . * + ? with a backslash to match them literally), or use subjectContains for plain text.`);
    }
  });
  for (const key of ['isOnlineMeeting', 'responseRequested', 'outsideWorkingHours', 'conflicts', 'isRecurring', 'changed'] as const) {
    const v = raw[key];
    if (v === undefined) continue;
    if (typeof v !== 'boolean') t.add([...at, key], `${key} must be true or false, but it is ${t.describe(v)}. Fix: write ${key}: true or ${key}: false.`);
    else spec[key] = v;
  }
  if (raw.attendeesMoreThan !== undefined) {
    const v = raw.attendeesMoreThan;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) t.add([...at, 'attendeesMoreThan'], `attendeesMoreThan must be a whole number, 0 or more, but it is ${t.describe(v)}. Fix: e.g. attendeesMoreThan: 15.`);
    else spec.attendeesMoreThan = v;
  }
  if (raw.myResponse !== undefined) {
    const v = raw.myResponse;
    const list = Array.isArray(v) ? v : [v];
    const bad = list.find((x) => !(MY_RESPONSES as readonly unknown[]).includes(x));
    if (list.length === 0 || bad !== undefined) {
      const hint = typeof bad === 'string' ? t.suggest(bad, MY_RESPONSES) : undefined;
      t.add([...at, 'myResponse'], `myResponse must be none, accepted, tentative, declined or organizer (or a list of them), but it is ${t.describe(list.length === 0 ? v : bad)}. Fix: ${hint ? `did you mean "${hint}"? ` : ''}e.g. myResponse: none (not answered yet).`);
    } else spec.myResponse = v as MyResponse | MyResponse[];
  }
  if (raw.any !== undefined) {
    if (!Array.isArray(raw.any) || raw.any.length === 0) {
      t.add([...at, 'any'], `any must be a non-empty list of match conditions (one of them must hold), but it is ${t.describe(raw.any)}. Fix: e.g. any: [ { organizer: a@example.com }, { subjectContains: 1:1 } ].`);
    } else {
      const subs = raw.any.map((sub, i) => checkMatch(sub, [...at, 'any', i], t));
      if (subs.every((s) => s !== undefined)) spec.any = subs as CalendarMatchSpec[];
    }
  }
  return t.problemCount() === before ? spec : undefined;
}

function checkActions(raw: unknown, ruleAt: Segment[], t: CheckTools): CalendarAction[] | undefined {
  const at = [...ruleAt, 'actions'];
  if (raw === undefined) {
    t.add(ruleAt, `the rule has no actions:. Fix: add a list, e.g. actions: [ { respond: accept } ].`);
    return undefined;
  }
  if (!Array.isArray(raw) || raw.length === 0) {
    t.add(at, `actions must be a non-empty list, but it is ${t.describe(raw)}${Array.isArray(raw) ? ' that is empty' : ''}. Fix: e.g. actions: [ { respond: tentative } ].`);
    return undefined;
  }
  const before = t.problemCount();
  const actions = raw.map((item, i) => checkAction(item, [...at, i], t));
  const responds = raw.map((item, i) => (isObject(item) && 'respond' in item ? i : -1)).filter((i) => i >= 0);
  if (responds.length > 1) t.add([...at, responds[1]!], `the rule answers the invitation twice; only one answer can be sent. Fix: keep one respond action.`);
  return t.problemCount() === before ? (actions as CalendarAction[]) : undefined;
}

function checkAction(raw: unknown, at: Segment[], t: CheckTools): CalendarAction | undefined {
  if (!isObject(raw) || Object.keys(raw).length !== 1) {
    const keys = isObject(raw) ? Object.keys(raw) : [];
    const close = typeof raw === 'string' ? t.suggest(raw, CALENDAR_ACTION_KEYS) : undefined;
    t.add(at, keys.length > 1
      ? `an action has exactly one key, but this one has ${keys.length} (${keys.join(', ')}). Fix: write each as its own list item: [ ${keys.map((k) => `{ ${k}: … }`).join(', ')} ].`
      : `an action must be a mapping with one key such as { respond: accept }, but it is ${t.describe(raw)}. Fix: ${close ? `write { ${close}: … }` : `one of ${CALENDAR_ACTION_KEYS.join(', ')}`}.`);
    return undefined;
  }
  const key = Object.keys(raw)[0]!;
  const v = raw[key];
  const p = [...at, key];
  switch (key as CalendarActionName) {
    case 'respond': {
      const answer = (s: unknown, where: Segment[]): CalendarAnswer | undefined => {
        if (typeof s === 'string' && (ANSWERS as readonly string[]).includes(s.trim().toLowerCase())) return s.trim().toLowerCase() as CalendarAnswer;
        const hint = typeof s === 'string' ? t.suggest(s === 'tentativelyAccept' ? 'tentative' : s, ANSWERS) : undefined;
        t.add(where, `respond takes accept, tentative or decline, but it is ${t.describe(s)}. Fix: ${hint ? `did you mean "${hint}"? ` : ''}e.g. { respond: accept } or { respond: { response: decline, comment: "I am away" } }.`);
        return undefined;
      };
      if (!isObject(v)) {
        const response = answer(v, p);
        return response ? { respond: { response, sendResponse: true } } : undefined;
      }
      t.unknownKeys(v, p, ['response', 'comment', 'sendResponse'], 'respond');
      const response = answer(v.response, v.response === undefined ? p : [...p, 'response']);
      if (v.comment !== undefined && typeof v.comment !== 'string') t.add([...p, 'comment'], `comment must be text, but it is ${t.describe(v.comment)}. Fix: e.g. comment: "Sorry, I am away that day."`);
      const sendResponse = t.boolean(v, p, 'sendResponse', true, 'true (the organizer gets your answer; the default) or false (answer silently)');
      if (!response || (v.comment !== undefined && typeof v.comment !== 'string')) return undefined;
      return { respond: { response, sendResponse, ...(typeof v.comment === 'string' && v.comment !== '' ? { comment: v.comment } : {}) } };
    }
    case 'categorize': {
      const list = t.textList(v, p, 'categorize');
      return list ? { categorize: [...new Set(list.map((s) => s.trim()))] } : undefined;
    }
    case 'showAs':
      if (typeof v !== 'string' || !(SHOW_AS as readonly string[]).includes(v)) {
        const hint = typeof v === 'string' ? t.suggest(v, SHOW_AS) : undefined;
        t.add(p, `showAs must be one of ${SHOW_AS.join(', ')}, but it is ${t.describe(v)}. Fix: ${hint ? `did you mean "${hint}"? ` : ''}e.g. { showAs: tentative }.`);
        return undefined;
      }
      return { showAs: v as ShowAs };
    case 'reminderMinutes':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 40_320) {
        t.add(p, `reminderMinutes must be a whole number of minutes before the start (0 to 40320, four weeks), but it is ${t.describe(v)}. Fix: e.g. { reminderMinutes: 30 }.`);
        return undefined;
      }
      return { reminderMinutes: v };
    case 'webhook': {
      let url: URL | undefined;
      try {
        url = typeof v === 'string' ? new URL(v) : undefined;
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
        t.add(p, `webhook takes an http(s) URL, but it is ${t.describe(v)}. Fix: e.g. { webhook: "https://hooks.example.com/calendar" }.`);
        return undefined;
      }
      return { webhook: v as string };
    }
    case 'notify':
      if (v === true || (typeof v === 'string' && v.trim() !== '')) return { notify: v === true ? true : (v as string).trim() };
      t.add(p, `notify must be true (a line naming the event and the rule) or the text to send, but it is ${t.describe(v)}. Fix: e.g. { notify: true } or { notify: "The board meeting moved" }; it is POSTed to NOTIFY_URL.`);
      return undefined;
    default: {
      const close = t.suggest(key, CALENDAR_ACTION_KEYS);
      const elsewhere = (CALENDAR_MATCH_KEYS as readonly string[]).includes(key) ? `"${key}" is a condition: put it under match:.` : undefined;
      t.add(p, `unknown action "${key}" for a calendar rule. Fix: ${elsewhere ?? (close ? `did you mean "${close}"?` : `an action is one of ${CALENDAR_ACTION_KEYS.join(', ')}.`)}`, 'key');
      return undefined;
    }
  }
}
