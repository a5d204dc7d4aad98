/**
 * Calendar rules' actions: one definition per action of how it is planned for an event (and when it would
 * change nothing, so it is left out), and what kind of step it is for the job. Pure, like calendar-match.ts.
 */
import type { CalendarAction, CalendarActionName, CalendarRule } from '../config/calendar-rules-schema.ts';
import { explainMatch, type EventView } from './calendar-match.ts';

/** One step for the job: which event (series master or occurrence) it acts on, and why. */
export interface PlannedCalendarAction {
  rule: string;
  action: CalendarActionName;
  value: unknown;
  /** The event the action goes to: the series master unless the rule says `occurrences: each`. */
  targetId: string;
  /** The keys of the rule's match that held, e.g. `organizer=boss@example.com`. */
  why: string[];
}

/** What the earlier planned actions leave, so a later one that would change nothing is left out. */
interface PlanState {
  answered: boolean;
  categories: Set<string>;
  showAs: string;
  reminderMinutes: number;
  once: Set<string>;
}

/** `respond` answers; `patch` actions become one PATCH per event; `once` actions happen once per event version. */
export type ActionKind = 'respond' | 'patch' | 'once';
type ValueOf<K extends CalendarActionName> = Extract<CalendarAction, Record<K, unknown>>[K];

interface ActionDefinition<K extends CalendarActionName> {
  kind: ActionKind;
  /** The value to act with, or undefined when it would change nothing. */
  plan(value: ValueOf<K>, e: EventView, s: PlanState): unknown;
}

/** One entry per action; a missing one is a compile error. */
export const ACTIONS: { [K in CalendarActionName]: ActionDefinition<K> } = {
  respond: {
    kind: 'respond',
    // Never over a person's own answer, never to one's own meeting, never twice in one plan.
    plan: (v, e, s) => {
      if (s.answered || e.myResponse !== 'none' || e.isCancelled) return undefined;
      s.answered = true;
      return v;
    },
  },
  categorize: {
    kind: 'patch',
    plan: (v, _e, s) => {
      const add = v.filter((c) => !s.categories.has(c.toLowerCase()));
      for (const c of add) s.categories.add(c.toLowerCase());
      return add.length ? add : undefined;
    },
  },
  showAs: {
    kind: 'patch',
    plan: (v, _e, s) => {
      if (s.showAs === v) return undefined;
      s.showAs = v;
      return v;
    },
  },
  reminderMinutes: {
    kind: 'patch',
    plan: (v, _e, s) => {
      if (s.reminderMinutes === v) return undefined;
      s.reminderMinutes = v;
      return v;
    },
  },
  webhook: {
    kind: 'once',
    plan: (v, _e, s) => (s.once.has(`webhook:${v}`) ? undefined : (s.once.add(`webhook:${v}`), v)),
  },
  notify: {
    kind: 'once',
    plan: (v, _e, s) => (s.once.has('notify') ? undefined : (s.once.add('notify'), v)),
  },
};

/**
 * What the rules do to one event, in rule order until a matching rule with `stop: true`. Matching sees the event
 * as fetched; identical actions are planned once; actions that would change nothing are left out.
 *
 * @example planCalendarActions(job.rules, view) // [{ rule: 'one-on-ones', action: 'respond', value: { response: 'accept', … }, targetId, why: ['organizer=boss@example.com'] }]
 */
export function planCalendarActions(rules: CalendarRule[], e: EventView): PlannedCalendarAction[] {
  const s: PlanState = { answered: false, categories: new Set(e.categories.map((c) => c.toLowerCase())), showAs: e.showAs, reminderMinutes: e.reminderMinutes, once: new Set() };
  const planned: PlannedCalendarAction[] = [];
  for (const rule of rules) {
    const why = explainMatch(rule.match, e);
    if (!why) continue;
    const targetId = rule.occurrences === 'each' || !e.seriesMasterId ? e.id : e.seriesMasterId;
    for (const action of rule.actions) {
      const name = Object.keys(action)[0] as CalendarActionName;
      const definition = ACTIONS[name] as { plan(value: unknown, e: EventView, s: PlanState): unknown };
      const value = definition.plan((action as Record<string, unknown>)[name], e, s);
      if (value !== undefined) planned.push({ rule: rule.name, action: name, value, targetId, why });
    }
    if (rule.stop) break;
  }
  return planned;
}
