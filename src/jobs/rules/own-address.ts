import type { JobContext } from '../context.ts';

const ME_KEY = 'me';

/** The mailbox owner's address, lower-cased; kept in the job's store after the first look-up (not by a dry run). */
export async function ownAddress(ctx: Pick<JobContext, 'store' | 'mailbox'> & { dryRun?: boolean }): Promise<string> {
  const cached = await ctx.store.get<string>(ME_KEY);
  if (cached) return cached;
  const address = (await ctx.mailbox.address()).trim().toLowerCase();
  if (!ctx.dryRun) await ctx.store.set(ME_KEY, address);
  return address;
}
