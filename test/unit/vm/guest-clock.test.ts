/**
 * The NTP-style setting of a restored guest's clock (src/vm/guest-clock.ts) against a simulated
 * guest: its clock off by what RESUMED's wait left, each message delayed in either direction by a
 * loaded host, the delays uneven. Whenever the sync says "converged", the guest's true offset is
 * within the bound; it never steps on a sample that cannot tell.
 */
import { describe, expect, it } from 'vitest';
import { GUEST_CLOCK_BOUND_NS, hostRealtimeClock, syncGuestClock } from '../../../src/vm/guest-clock.js';
import { rng } from '../../helpers/fuzz.js';

/** Virtual time in ns; the guest's clock is the host's plus `offset`; delays from `delay()`. */
function simulatedGuest(offset: number, delay: (direction: 'to' | 'from') => number): {
  now: () => bigint; clock: (step: bigint) => Promise<bigint>; trueOffset: () => number; jump: (ns: number) => void; requests: bigint[];
} {
  let t = 1_800_000_000_000_000_000n;
  let off = BigInt(Math.round(offset));
  const requests: bigint[] = [];
  return {
    now: () => t,
    clock: async (step) => {
      requests.push(step);
      t += BigInt(Math.round(delay('to')));
      off += step;
      const guest = t + off;
      t += BigInt(Math.round(delay('from')));
      return guest;
    },
    trueOffset: () => Number(off),
    jump: (ns) => { off += BigInt(ns); },
    requests,
  };
}

const ms = 1_000_000;

describe('guest clock sync', () => {
  it('a guest 1 s behind on a quiet host is stepped once and proven within the bound', async () => {
    const g = simulatedGuest(-1000 * ms, () => 0.3 * ms);
    const sync = await syncGuestClock(g.clock, g.now);
    expect(sync.converged).toBe(true);
    expect(Math.abs(g.trueOffset())).toBeLessThanOrEqual(GUEST_CLOCK_BOUND_NS);
    expect(sync.rounds).toBe(2);
    expect(sync.stepsMs).toEqual([1000]);
  });

  it('a guest already right is not stepped', async () => {
    const g = simulatedGuest(0.05 * ms, () => 0.5 * ms);
    const sync = await syncGuestClock(g.clock, g.now);
    expect(sync).toMatchObject({ converged: true, rounds: 1, stepsMs: [] });
  });

  it('on a loaded host (long, uneven delays, now and then a quick message): proven within the bound, and what it proves holds', async () => {
    const rounds: number[] = [];
    for (let seed = 1; seed <= 500; seed++) {
      const next = rng(seed);
      // Mostly 2..80 ms each way, one message in five quick; the first offset up to ±2 s.
      const g = simulatedGuest((next() - 0.5) * 4000 * ms, () => (next() < 0.2 ? next() * 0.8 * ms : (2 + next() * 78) * ms));
      const sync = await syncGuestClock(g.clock, g.now);
      expect(sync.converged, `seed ${seed}: ${JSON.stringify(sync)}`).toBe(true);
      expect(Math.abs(g.trueOffset()), `seed ${seed}: ${JSON.stringify(sync)}`).toBeLessThanOrEqual(sync.boundMs * ms + 1);
      expect(sync.boundMs).toBeLessThanOrEqual(GUEST_CLOCK_BOUND_NS / ms);
      rounds.push(sync.rounds);
    }
    expect(Math.max(...rounds)).toBeLessThan(60);
  });

  it('when no round trip is short enough it says so, and what it proves still holds', async () => {
    // Every message 10 ms one way, 30 ms back: a 40 ms round trip never tells better than ±20 ms.
    const g = simulatedGuest(3 * ms, (d) => (d === 'to' ? 10 : 30) * ms);
    const sync = await syncGuestClock(g.clock, g.now, { maxRounds: 10 });
    expect(sync).toMatchObject({ converged: false, rounds: 10, boundMs: 20 });
    expect(Math.abs(g.trueOffset())).toBeLessThanOrEqual(20 * ms);
    // Stepped once, to the middle of what the first sample told; the others told nothing new.
    expect(sync.stepsMs).toEqual([7]);
  });

  it('a guest clock that jumps by itself between two round trips is measured afresh', async () => {
    const g = simulatedGuest(-500 * ms, (d) => (d === 'to' ? 0.2 : 3) * ms);
    const clock = async (step: bigint): Promise<bigint> => {
      if (g.requests.length === 1) g.jump(5000 * ms);
      return g.clock(step);
    };
    const sync = await syncGuestClock(clock, g.now);
    expect(sync.converged).toBe(true);
    expect(Math.abs(g.trueOffset())).toBeLessThanOrEqual(GUEST_CLOCK_BOUND_NS);
  });

  it("the host clock has ns resolution and is Date.now()'s", () => {
    const now = hostRealtimeClock();
    // Off by at most its anchor's uncertainty (a few µs on an idle host; more when preempted).
    const slackMs = 0.1 + now.uncertaintyNs / 1e6;
    for (let i = 0; i < 20; i++) {
      const a = Date.now();
      const n = Number(now() / 1000n) / 1000;
      const b = Date.now();
      expect(n).toBeGreaterThanOrEqual(a - slackMs);
      expect(n).toBeLessThan(b + 1 + slackMs);
    }
    const samples = new Set(Array.from({ length: 50 }, () => now() % 1_000_000n));
    expect(samples.size).toBeGreaterThan(10);
  });
});
