/**
 * Fuzzing the readers of untrusted bytes: the .gvmi reader and the guest-message decoder. Only
 * typed errors (GvmiTestError), no hang, no crash, memory bounded.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MessageReader } from '../../../src/agent/codec.js';
import { RespType } from '../../../src/agent/protocol.js';
import { GvmiTestError } from '../../../src/errors.js';
import { encodeTrailer, readGvmi } from '../../../src/image/gvmi-file.js';
import { smallSquashfs } from '../../helpers/small-squashfs.js';
import { FUZZ_LENGTH, FUZZ_SEED, FUZZ_TIMEOUT_MS, fuzzCases, mutate, rng } from '../../helpers/fuzz.js';

let dir: string;
let image: Buffer;
let trailerStart: number;

beforeAll(async () => {
  const { dir: made, bytes: fs } = await smallSquashfs();
  dir = made;
  trailerStart = fs.length;
  image = Buffer.concat([fs, encodeTrailer({ Env: ['A=1'], Volumes: { '/out': {} }, WorkingDir: '/' })]);
});

const READER_CHECKS = ['image.bad-length', 'image.crc-mismatch', 'image.no-squashfs', 'image.truncated'];

describe('fuzz: .gvmi reader', () => {
  it(`mutated and random files (${FUZZ_LENGTH}): typed errors only`, async () => {
    const next = rng(FUZZ_SEED);
    const path = join(dir, 'case.gvmi');
    const codes = new Map<string, number>();
    const heapBefore = process.memoryUsage().heapUsed;
    await fuzzCases('.gvmi reader', async (i) => {
      // Mostly the trailer and the superblock, where the reader looks.
      const hot = next() < 0.5 ? { start: trailerStart, end: image.length } : { start: 0, end: 96 };
      const input = mutate(next, image, hot);
      await writeFile(path, input);
      try {
        await readGvmi(path);
        codes.set('ok', (codes.get('ok') ?? 0) + 1);
      } catch (error) {
        if (!(error instanceof GvmiTestError)) throw new Error(`case ${i} (seed ${FUZZ_SEED}): untyped ${String(error)}`);
        codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
      }
    }, () => READER_CHECKS.every((code) => codes.has(code)));
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(256 * 1024 * 1024);
    // the mutations reach every check of the reader
    for (const code of READER_CHECKS) {
      expect(codes.get(code) ?? 0, `${code} in ${JSON.stringify([...codes])}`).toBeGreaterThan(0);
    }
  }, FUZZ_TIMEOUT_MS);
});

describe('fuzz: guest message decoder', () => {
  it(`mutated streams fed in random pieces (${FUZZ_LENGTH}): messages or agent.protocol, nothing else`, async () => {
    const next = rng(FUZZ_SEED + 1);
    const frame = (id: bigint, type: number, body: Buffer): Buffer => {
      const h = Buffer.alloc(9);
      h.writeBigUInt64LE(id);
      h.writeUInt8(type, 8);
      return Buffer.concat([h, body]);
    };
    const u64 = (n: number): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };
    const valid = Buffer.concat([
      frame(0n, RespType.NOTIFY_EXEC_FAILED, Buffer.concat([u64(5), Buffer.from([4, 2, 0, 0, 0])])),
      frame(1n, RespType.OK_BYTES, Buffer.concat([u64(4), Buffer.from('abcd')])),
      frame(0n, RespType.NOTIFY_OUTPUT_DATA, Buffer.concat([u64(1), Buffer.from([1, 0, 0, 0]), u64(3), Buffer.from('xyz')])),
      frame(2n, RespType.ERR, Buffer.from([2, 0, 0, 0])),
      frame(0n, RespType.NOTIFY_PROCESS_DIED, Buffer.concat([u64(1), Buffer.from([0, 0])])),
    ]);
    let decoded = 0;
    let refused = 0;
    await fuzzCases('guest message decoder', (i) => {
      const input = mutate(next, valid);
      const reader = new MessageReader();
      try {
        for (let p = 0; p < input.length;) {
          const n = 1 + Math.floor(next() * 40);
          decoded += reader.push(input.subarray(p, p + n)).length;
          p += n;
        }
      } catch (error) {
        if (!(error instanceof GvmiTestError) || error.code !== 'agent.protocol') throw new Error(`case ${i} (seed ${FUZZ_SEED + 1}): ${String(error)}`);
        refused++;
      }
    }, () => decoded > 0 && refused > 0);
    expect(decoded).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  }, FUZZ_TIMEOUT_MS);
});
