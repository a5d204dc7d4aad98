/**
 * A clock and one-shot timers that a test moves by hand, for code that takes `{ now, setTimer }` (the snooze
 * waker). `now()` is the real time (`frozen`: the time the clock was made) plus what the test has advanced; a
 * timer fires only when `advance` passes its time, and `advance` awaits `settle` first and after each timer, so
 * the work a timer starts is finished before the next.
 * Example: `const clock = fakeClock(); …; await clock.advance(30 * 60_000, () => waker.settled())`.
 */
export function fakeClock(options: { offsetMs?: number; frozen?: boolean } = {}) {
  let offset = options.offsetMs ?? 0;
  const timers = new Set<{ at: number; fn: () => void }>();
  // Frozen: time moves only by `advance` (unit tests); else with the real clock too, as the rest of the agent sees it.
  const frozenAt = Date.now();
  const now = () => (options.frozen ? frozenAt : Date.now()) + offset;
  return {
    now,
    setTimer(fn: () => void, ms: number): () => void {
      const timer = { at: now() + ms, fn };
      timers.add(timer);
      return () => void timers.delete(timer);
    },
    /** How long until each pending timer fires (ms), soonest first. */
    pending(): number[] {
      return [...timers].map((t) => t.at - now()).sort((a, b) => a - b);
    },
    /**
     * Puts the clock back on real time, each pending timer keeping the time it has left: for a test whose other
     * parts (a job run) read the real clock.
     */
    rewind(): void {
      for (const t of timers) t.at -= offset;
      offset = 0;
    },
    /** Moves the clock `ms` forward, firing each timer due on the way at its own time. */
    async advance(ms: number, settle: () => Promise<void>): Promise<void> {
      // Work started before (a timer set at the end of it) is part of the present.
      await settle();
      const target = now() + ms;
      for (;;) {
        const next = [...timers].sort((a, b) => a.at - b.at)[0];
        if (!next || next.at > target) break;
        timers.delete(next);
        offset += Math.max(0, next.at - now());
        next.fn();
        await settle();
      }
      offset += Math.max(0, target - now());
    },
  };
}

export type FakeClock = ReturnType<typeof fakeClock>;
