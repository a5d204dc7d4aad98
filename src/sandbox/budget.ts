import type { SandboxContext } from './context.ts';
import { GraphError } from './graph-error.ts';

/**
 * Outlook's request budget: 10,000 requests per 10 minutes per app and mailbox, each `$batch` sub-request
 * counting, requests that were refused too ("Microsoft Graph continues to log resource usage while a client is
 * being throttled"). Over it: 429 with Retry-After. OneDrive is not an Outlook resource and is not counted.
 * Sources and what could not be confirmed: docs/microsoft-notes.md, "Headers, attachments, contacts, drive,
 * reply, request budget". The window slides: a request counts for exactly `windowMs` after it was made.
 */
export interface BudgetSettings {
  limit: number;
  windowMs: number;
}

export const OUTLOOK_BUDGET: BudgetSettings = { limit: 10_000, windowMs: 10 * 60 * 1000 };

export interface BudgetUsage extends BudgetSettings {
  /** 429s answered for the budget since start or reset. */
  throttled: number;
  windows: { appId: string; upn: string; used: number }[];
}

class RequestBudget {
  private readonly windows = new Map<string, number[]>();
  throttled = 0;

  constructor(readonly defaults: BudgetSettings, public settings: BudgetSettings) {}

  /** Counts one request; returns the seconds to wait when it is over the limit, else undefined. */
  charge(key: string, now: number): number | undefined {
    let times = this.windows.get(key);
    if (!times) this.windows.set(key, (times = []));
    this.prune(times, now);
    times.push(now);
    if (times.length <= this.settings.limit) return undefined;
    this.throttled += 1;
    // Free again once enough of the oldest requests have left the window for one more to fit.
    const freeAt = times[times.length - this.settings.limit]! + this.settings.windowMs;
    return Math.max(1, Math.ceil((freeAt - now) / 1000));
  }

  usage(now: number): BudgetUsage {
    const windows = [...this.windows].map(([key, times]) => {
      this.prune(times, now);
      const [appId = '', upn = ''] = key.split('|');
      return { appId, upn, used: times.length };
    });
    return { ...this.settings, throttled: this.throttled, windows };
  }

  reset(): void {
    this.windows.clear();
    this.throttled = 0;
    this.settings = { ...this.defaults };
  }

  private prune(times: number[], now: number): void {
    let drop = 0;
    while (drop < times.length && times[drop]! <= now - this.settings.windowMs) drop++;
    if (drop) times.splice(0, drop);
  }
}

const budgets = new WeakMap<SandboxContext, RequestBudget>();

function budgetOf(ctx: SandboxContext): RequestBudget {
  let b = budgets.get(ctx);
  if (!b) budgets.set(ctx, (b = new RequestBudget(OUTLOOK_BUDGET, { ...OUTLOOK_BUDGET })));
  return b;
}

/** Checks a budget setting and names the fix. */
export function checkBudgetSettings(input: Partial<BudgetSettings>): Partial<BudgetSettings> {
  for (const key of ['limit', 'windowMs'] as const) {
    const v = input[key];
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
      throw new Error(`budget ${key} must be a positive whole number (got ${JSON.stringify(v)}); the real values are limit ${OUTLOOK_BUDGET.limit}, windowMs ${OUTLOOK_BUDGET.windowMs}`);
    }
  }
  return { ...(input.limit !== undefined ? { limit: input.limit } : {}), ...(input.windowMs !== undefined ? { windowMs: input.windowMs } : {}) };
}

/** Sets the budget a sandbox starts with (and returns to on reset); the real one when not given. */
export function configureBudget(ctx: SandboxContext, input: Partial<BudgetSettings> = {}): void {
  const settings = { ...OUTLOOK_BUDGET, ...checkBudgetSettings(input) };
  budgets.set(ctx, new RequestBudget(settings, { ...settings }));
}

/** Changes the running budget, e.g. 100 requests per 6 s so a test sees the limit in seconds. */
export function setBudget(ctx: SandboxContext, input: Partial<BudgetSettings>): BudgetSettings {
  const b = budgetOf(ctx);
  b.settings = { ...b.settings, ...checkBudgetSettings(input) };
  return { ...b.settings };
}

export const budgetUsage = (ctx: SandboxContext): BudgetUsage => budgetOf(ctx).usage(ctx.now());
export const resetBudget = (ctx: SandboxContext): void => budgetOf(ctx).reset();

/**
 * Counts a request of `appId` on `upn`'s mailbox (`rest`: the path after /me or /users/{id}) and refuses it
 * with 429 + Retry-After (whole seconds) when the window is full.
 */
export function chargeBudget(ctx: SandboxContext, appId: string, upn: string, rest: string[]): void {
  if (rest[0] === 'drive') return;
  const wait = budgetOf(ctx).charge(`${appId}|${upn.toLowerCase()}`, ctx.now());
  if (wait !== undefined) {
    throw new GraphError(429, 'TooManyRequests', 'Please retry again later.', { 'Retry-After': String(wait) });
  }
}
