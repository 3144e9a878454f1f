/**
 * How much a build may write to its scratch directory. An archive is small; what it expands to
 * need not be: a gzip layer of zeros grows a thousandfold, a tar header may declare 100 GiB. So
 * the bytes of every tar stream a build unpacks (the outer archive, each uncompressed layer,
 * headers included: an upper bound of what lands on disk) are counted as they are read, and the
 * build stops the moment the count passes the limit — before those bytes are written. An entry
 * whose declared size does not fit in what is left is refused before any of it is written.
 *
 * The limit is the smaller of
 *  - what the scratch filesystem can spare: its free space less a margin, so a build never fills
 *    the host's disk, and
 *  - max(DEFAULT_EXPAND_RATIO × the input's size, EXPAND_FLOOR): no real image grows like a bomb.
 *    `maxExpand` (`--max-expand`, GVMI_TEST_MAX_EXPAND) replaces this one for images that really
 *    are that large: a byte count ("8GiB") or a ratio ("100x").
 */
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { formatBytes } from '../format-bytes.js';
import { GvmiTestError } from '../errors.js';

const MiB = 1024 * 1024;
/** Filesystem layers compress 2–5× with gzip; 20× leaves room and still stops a bomb early. */
export const DEFAULT_EXPAND_RATIO = 20;
/** Tiny archives may expand this much whatever the ratio says. */
export const EXPAND_FLOOR = 64 * MiB;
/** Free space left to the host: 256 MiB, or a quarter of what is free on a nearly full disk. */
const MAX_MARGIN = 256 * MiB;

export const MAX_EXPAND_ENV = 'GVMI_TEST_MAX_EXPAND';

export type MaxExpand = { bytes: number } | { ratio: number };

const UNITS: Record<string, number> = { '': 1, k: 1024, m: MiB, g: 1024 * MiB, t: 1024 * 1024 * MiB };

/** "100x" or "2.5x" (a ratio), "8GiB", "512M", "1073741824" (bytes). */
export function parseMaxExpand(value: string | number): MaxExpand {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value > 0) return { bytes: value };
  } else {
    const text = value.trim().toLowerCase();
    const ratio = /^(\d+(?:\.\d+)?)x$/.exec(text);
    if (ratio && Number(ratio[1]) > 0) return { ratio: Number(ratio[1]) };
    const bytes = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/.exec(text);
    if (bytes && Number(bytes[1]) > 0) return { bytes: Math.floor(Number(bytes[1]) * UNITS[bytes[2]!]!) };
  }
  throw new GvmiTestError('build.bad-option', `max-expand ${JSON.stringify(value)}: give a size (8GiB, 512M, bytes) or a ratio to the archive size (100x)`);
}

function size(n: number): string {
  return formatBytes(n, 1);
}

interface Limit {
  bytes: number;
  /** What the limit is, for the message: "the 64.0 MiB allowed for a 1.0 MiB archive (…)". */
  what: string;
  hint: string;
}

export class ExpansionBudget {
  private used = 0;
  readonly limit: Limit;

  constructor(limits: Limit[]) {
    this.limit = limits.reduce((a, b) => (b.bytes < a.bytes ? b : a));
  }

  /** Bytes counted so far. */
  get expanded(): number {
    return this.used;
  }

  private refuse(message: string): never {
    throw new GvmiTestError('build.too-large', message, {
      hint: this.limit.hint,
      details: { limitBytes: this.limit.bytes, expandedBytes: this.used },
    });
  }

  /** Before an entry's body is written: refuses one that declares more than is left. */
  declare(bytes: number, entry: string): void {
    if (this.used + bytes > this.limit.bytes) {
      this.refuse(`${entry} declares ${size(bytes)}, more than is left of ${this.limit.what}`);
    }
  }

  /** Counts bytes about to be unpacked; throws once the total passes the limit. */
  charge(bytes: number): void {
    this.used += bytes;
    if (this.used > this.limit.bytes) this.refuse(`the image expands to more than ${this.limit.what}`);
  }

  /**
   * `input` with every byte counted before it passes on: the returned stream fails with
   * build.too-large instead of handing on the chunk that crosses the limit, and destroys `input`
   * so nothing more is read or decompressed.
   */
  meter(input: Readable): Readable {
    const meter = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        try {
          this.charge(chunk.length);
        } catch (error) {
          callback(error as Error);
          return;
        }
        callback(null, chunk);
      },
    });
    input.on('error', (error) => meter.destroy(error));
    meter.on('error', () => input.destroy());
    return input.pipe(meter);
  }
}

/**
 * The budget of one build writing under `scratch` from an input of `inputBytes` (the archive, or
 * an OCI directory's layers). `maxExpand` replaces the ratio limit; the free-space one stays, as
 * nothing can be written past it anyway.
 */
export async function expansionBudget(scratch: string, inputBytes: number, maxExpand?: MaxExpand): Promise<ExpansionBudget> {
  const override = `pass --max-expand SIZE|RATIOx (e.g. 8GiB or 100x; library: maxExpand; env ${MAX_EXPAND_ENV})`;
  const limits: Limit[] = [];
  if (maxExpand === undefined) {
    const bytes = Math.max(DEFAULT_EXPAND_RATIO * inputBytes, EXPAND_FLOOR);
    limits.push({
      bytes,
      what: `the ${size(bytes)} allowed for a ${size(inputBytes)} archive (${DEFAULT_EXPAND_RATIO}× its size, at least ${size(EXPAND_FLOOR)})`,
      hint: `an archive growing this much looks like a decompression bomb; if the image really is that large, ${override}`,
    });
  } else if ('ratio' in maxExpand) {
    const bytes = Math.max(Math.floor(maxExpand.ratio * inputBytes), EXPAND_FLOOR);
    limits.push({
      bytes,
      what: `the ${size(bytes)} allowed for a ${size(inputBytes)} archive (max-expand ${maxExpand.ratio}×, at least ${size(EXPAND_FLOOR)})`,
      hint: `if the image really is that large, raise the ratio: ${override}`,
    });
  } else {
    limits.push({
      bytes: maxExpand.bytes,
      what: `the ${size(maxExpand.bytes)} allowed by max-expand`,
      hint: `if the image really is that large, raise it: ${override}`,
    });
  }
  const fs = await statfs(scratch);
  const free = fs.bavail * fs.bsize;
  const margin = Math.min(MAX_MARGIN, Math.floor(free / 4));
  limits.push({
    bytes: free - margin,
    what: `the ${size(free - margin)} the scratch filesystem can spare (${size(free)} free under ${dirname(scratch)}, ${size(margin)} kept free)`,
    hint: 'free space there, or point TMPDIR at a larger filesystem',
  });
  return new ExpansionBudget(limits);
}
