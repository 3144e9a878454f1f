/**
 * Small, seeded fuzzing helpers: mutated real inputs and random bytes, reproducible from the seed
 * printed on failure. Each target runs FUZZ_CASES cases (GVMI_TEST_FUZZ_CASES, default 10,000),
 * or fewer when FUZZ_SECONDS of work (GVMI_TEST_FUZZ_SECONDS, default 20) ran out first: a busy
 * machine runs fewer cases, never fails for the time it took. Cases run in a fixed order from
 * the seed, so any count is a prefix of the full run. `make fuzz`: 200,000 cases, no time limit.
 */
export const FUZZ_CASES = Math.max(1, Math.floor(Number(process.env['GVMI_TEST_FUZZ_CASES'] ?? 10_000)));
export const FUZZ_SECONDS = Number(process.env['GVMI_TEST_FUZZ_SECONDS'] ?? 20);
export const FUZZ_SEED = Number(process.env['GVMI_TEST_FUZZ_SEED'] ?? 0x9e3779b9);

/** A fuzz test's own timeout: the budget with room to spare (a day without one). */
export const FUZZ_TIMEOUT_MS = FUZZ_SECONDS > 0 ? FUZZ_SECONDS * 1000 * 3 + 120_000 : 24 * 3600_000;

/** What the fuzz title says about its length. */
export const FUZZ_LENGTH = FUZZ_SECONDS > 0 ? `up to ${FUZZ_CASES} cases or ${FUZZ_SECONDS} s` : `${FUZZ_CASES} cases`;

/**
 * Runs `one(0)`, `one(1)`, … until FUZZ_CASES ran, or FUZZ_SECONDS passed and `covered()` holds
 * (what the test goes on to assert was reached: the time limit never cuts a run short of it).
 * Every case that runs is checked by `one` itself. Logs and returns how many ran.
 */
export async function fuzzCases(target: string, one: (i: number) => void | Promise<void>, covered: () => boolean = () => true): Promise<number> {
  const started = performance.now();
  const deadline = FUZZ_SECONDS > 0 ? started + FUZZ_SECONDS * 1000 : Infinity;
  let ran = 0;
  while (ran < FUZZ_CASES) {
    await one(ran);
    ran++;
    if (performance.now() >= deadline && covered()) break;
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`fuzz: ${target}: ${ran} of ${FUZZ_CASES} cases in ${seconds} s${ran < FUZZ_CASES ? ` (the ${FUZZ_SECONDS} s budget ran out first)` : ''}`);
  return ran;
}

/** mulberry32: a tiny seeded PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(next: () => number, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = Math.floor(next() * 256);
  return b;
}

/** One of: flip bits, overwrite a run, truncate, duplicate a slice, insert random bytes, or all-random. */
export function mutate(next: () => number, input: Buffer, hotRegion?: { start: number; end: number }): Buffer {
  const pick = (max: number): number => Math.floor(next() * Math.max(1, max));
  const at = (): number => (hotRegion && next() < 0.7 ? hotRegion.start + pick(hotRegion.end - hotRegion.start) : pick(input.length));
  const out = Buffer.from(input);
  switch (pick(7)) {
    case 0: {
      const flips = 1 + pick(8);
      for (let i = 0; i < flips; i++) {
        const p = at();
        if (p < out.length) out[p] = out[p]! ^ (1 << pick(8));
      }
      return out;
    }
    case 1: {
      const p = at();
      const n = 1 + pick(16);
      for (let i = 0; i < n && p + i < out.length; i++) out[p + i] = pick(256);
      return out;
    }
    case 2:
      return out.subarray(0, at());
    case 3: {
      const p = at();
      return Buffer.concat([out.subarray(0, p), out.subarray(p, p + pick(64)), out.subarray(p)]);
    }
    case 4: {
      const p = at();
      return Buffer.concat([out.subarray(0, p), randomBytes(next, 1 + pick(32)), out.subarray(p)]);
    }
    case 5: {
      // interesting integers where a length or count might be
      const p = at();
      const values = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0xffffffff];
      if (p + 4 <= out.length) out.writeUInt32LE(values[pick(values.length)]! >>> 0, p);
      return out;
    }
    default:
      return randomBytes(next, pick(input.length * 2 + 16));
  }
}
