import { randomBytes } from 'node:crypto';
import type { PendingSignin } from '../auth/index.ts';

/**
 * Sign-ins in progress, each bound to the browser that started it by an HttpOnly cookie holding a random id.
 * Kept in memory: the callback always reaches the process that started the sign-in, and a restart
 * simply asks the person to start again. Each entry is used once.
 */
export class SigninFlows {
  private readonly flows = new Map<string, PendingSignin>();
  constructor(private readonly ttlMs = 10 * 60_000, private readonly now: () => number = Date.now, private readonly max = 100) {}

  create(pending: PendingSignin): string {
    this.sweep();
    if (this.flows.size >= this.max) this.flows.delete(this.flows.keys().next().value!);
    const id = randomBytes(24).toString('base64url');
    this.flows.set(id, pending);
    return id;
  }

  /** Returns the flow and forgets it, so a replayed callback finds nothing. */
  take(id: string | undefined): PendingSignin | undefined {
    if (!id) return undefined;
    const flow = this.flows.get(id);
    this.flows.delete(id);
    if (!flow || this.now() - flow.createdAt > this.ttlMs) return undefined;
    return flow;
  }

  private sweep(): void {
    for (const [id, flow] of this.flows) if (this.now() - flow.createdAt > this.ttlMs) this.flows.delete(id);
  }
}
