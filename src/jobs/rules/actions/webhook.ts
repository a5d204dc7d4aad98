import { describe } from '../../../config/check-helpers.ts';
import { mayHaveRun, networkFailure } from '../../../graph/retry-policy.ts';
import { ActionCallError, type ActionDefinition } from '../definition.ts';

const WEBHOOK_TIMEOUT_MS = 15_000;

/** `webhook: https://…`: POSTs the job, rule and the message's id, subject, sender and date; once per message, ever. */
export const webhook: ActionDefinition<string, string> = {
  check: (raw, at, t) => {
    let url: URL | undefined;
    try {
      url = typeof raw === 'string' ? new URL(raw) : undefined;
    } catch {
      url = undefined;
    }
    if (url && (url.protocol === 'https:' || url.protocol === 'http:')) return raw as string;
    t.add(at, `webhook takes an http(s) URL, but it is ${describe(raw)}. Fix: e.g. { webhook: "https://hooks.example.com/mail" }.`);
    return undefined;
  },
  plan: (value, state) => (state.first('webhook', value) ? value : undefined),
  execution: {
    kind: 'call',
    async run(ctx, message, step) {
      const url = step.value;
      let response: Response;
      try {
        response = await ctx.fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            job: ctx.job,
            rule: step.rule,
            message: { id: message.id, subject: message.subject, from: (message.from as { emailAddress?: { address?: string } } | undefined)?.emailAddress?.address, receivedDateTime: message.receivedDateTime },
          }),
          signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(WEBHOOK_TIMEOUT_MS)]),
        });
      } catch (cause) {
        if (ctx.signal.aborted) throw cause;
        throw new ActionCallError(`The webhook ${url} gave no answer (${(cause as Error).message}).`, mayHaveRun(networkFailure(cause)), true, { cause });
      }
      await response.body?.cancel();
      if (!response.ok) {
        // By the same rule as a Graph write: 429/503 prove it did not run; 500/502/504 leave it unsure; any other answer refused it.
        throw new ActionCallError(`The webhook ${url} answered HTTP ${response.status}.`, mayHaveRun({ kind: 'status', status: response.status }), response.status === 429 || response.status >= 500);
      }
    },
  },
  onceOnly: true,
  permission: undefined,
  bareValue: '…',
  readme: { example: 'webhook: https://hooks.example.com/mail', text: 'POSTs JSON with the job, the rule and the message\'s id, subject, sender and date, once per message ever' },
};
