/**
 * Bringing a restored guest's clock to the host's, NTP-style. RESUMED carries the host's time, but
 * on a loaded host that message can wait in queues (the host's event loop, QEMU, a vCPU thread
 * that is not scheduled) for a second before the guest sets it. So the host then measures what is
 * left: it reads its clock (t0), asks the guest for its own (CLOCK), reads its clock again (t1).
 * The guest read its clock inside [t0, t1], so its offset lies in [guest - t1, guest - t0]. Those
 * intervals are intersected across round trips (a short trip to the guest narrows one end, a short
 * trip back the other, even in different rounds), moved by every step the host makes (a step is
 * relative, so its own delay does not matter), and widened for the clocks' drift. The guest is
 * stepped to the middle of what is known; it ends when the whole interval lies within the bound,
 * after however many round trips a loaded host needs, and is centred once more.
 */

/** How far a synchronised guest clock may be from the host's. */
export const GUEST_CLOCK_BOUND_NS = 2_000_000;
/** Round trips at most; a quiet host needs two or three. */
export const GUEST_CLOCK_MAX_ROUNDS = 60;
/** How fast the two clocks may drift apart while the rounds last (parts per million). */
const DRIFT_PPM = 500;

export interface GuestClockSync {
  /** It was proven: |guest - host| <= boundMs at the end. */
  converged: boolean;
  /** The offset RESUMED left, as first measured (positive: the guest was ahead). */
  firstOffsetMs: number;
  /** What is proven at the end: the guest is within boundMs of the host. */
  boundMs: number;
  /** The shortest round trip seen. */
  shortestRoundTripMs: number;
  rounds: number;
  /** The steps applied, in ms. */
  stepsMs: number[];
}

/** A clock in ns; `uncertaintyNs`: how far its anchor may be off (half the window it was taken in). */
export interface HostClock {
  (): bigint;
  readonly uncertaintyNs: number;
}

/**
 * The host's CLOCK_REALTIME in ns. Date.now() has only milliseconds; the monotonic clock fills in
 * below them, anchored where Date.now() ticks (so the anchor is right to a few µs, not to 1 ms).
 */
export function hostRealtimeClock(): HostClock {
  let beforeLast = process.hrtime.bigint();
  let last = Date.now();
  let best: { ms: bigint; hr: bigint; window: bigint } | undefined;
  for (let ticks = 0; ticks < 5 && !(best && best.window < 50_000n);) {
    const before = process.hrtime.bigint();
    const ms = Date.now();
    const after = process.hrtime.bigint();
    if (ms !== last) {
      // The tick came between the previous Date.now() and this one: inside (beforeLast, after).
      // A window longer than 50 µs (preempted in between) waits for the next tick, five at most,
      // and the narrowest window seen is kept (on a busy host every one may be long).
      ticks++;
      const window = after - beforeLast;
      if (!best || window < best.window) best = { ms: BigInt(ms), hr: (beforeLast + after) / 2n, window };
      last = ms;
    }
    beforeLast = before;
  }
  const { ms, hr, window } = best!;
  return Object.assign(() => ms * 1_000_000n + (process.hrtime.bigint() - hr), { uncertaintyNs: Number(window) / 2 });
}

/**
 * Samples and steps the guest clock until it is proven within `boundNs` of the host's, or
 * `maxRounds` round trips were made (then `converged` is false: the host never answered fast
 * enough to prove it, and the guest is as close as those round trips allowed).
 * `clock(step)` steps the guest's clock by `step` ns and answers the guest's time in ns.
 */
export async function syncGuestClock(
  clock: (stepNs: bigint) => Promise<bigint>,
  now: () => bigint = hostRealtimeClock(),
  { boundNs = GUEST_CLOCK_BOUND_NS, maxRounds = GUEST_CLOCK_MAX_ROUNDS }: { boundNs?: number; maxRounds?: number } = {},
): Promise<GuestClockSync> {
  const ms = (ns: number): number => Math.round(ns / 1000) / 1000;
  const stepsMs: number[] = [];
  // What is known of the guest's offset (guest - host, ns), as of host time `at`.
  let lo = -Infinity;
  let hi = Infinity;
  let at = 0n;
  let firstOffset: number | undefined;
  let shortest = Infinity;
  let step = 0;
  let rounds = 0;
  const proven = (): number => Math.max(Math.abs(lo), Math.abs(hi));
  while (rounds < maxRounds) {
    rounds++;
    const t0 = now();
    const guest = await clock(BigInt(step));
    const t1 = now();
    if (step !== 0) stepsMs.push(ms(step));
    shortest = Math.min(shortest, Number(t1 - t0));
    const drift = at === 0n ? 0 : (Number(t1 - at) * DRIFT_PPM) / 1e6;
    lo += step - drift;
    hi += step + drift;
    step = 0;
    const sampleLo = Number(guest - t1);
    const sampleHi = Number(guest - t0);
    firstOffset ??= (sampleLo + sampleHi) / 2;
    // Disjoint only if the guest's clock moved by itself: then only the new sample holds.
    [lo, hi] = Math.max(lo, sampleLo) <= Math.min(hi, sampleHi) ? [Math.max(lo, sampleLo), Math.min(hi, sampleHi)] : [sampleLo, sampleHi];
    at = t1;
    if (proven() <= boundNs) {
      // Proven; centred as well, when that moves it by more than 0.1 ms (no measuring needed).
      const middle = (lo + hi) / 2;
      if (Math.abs(middle) > 100_000) step = Math.round(-middle);
      break;
    }
    // To the middle of what is known: off by at most half the interval's width after it.
    step = Math.round(-(lo + hi) / 2);
  }
  // A step still due (the centring, or out of round trips): made all the same.
  if (step !== 0) {
    await clock(BigInt(step));
    stepsMs.push(ms(step));
    lo += step;
    hi += step;
  }
  return {
    converged: proven() <= boundNs,
    firstOffsetMs: ms(firstOffset ?? 0),
    boundMs: ms(proven()),
    shortestRoundTripMs: ms(shortest),
    rounds,
    stepsMs,
  };
}
