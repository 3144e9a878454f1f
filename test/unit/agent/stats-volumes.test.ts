/** STATS's tail: the deploy's ram and storage volumes as the guest measured them (deploy_volumes.c). */
import { describe, expect, it } from 'vitest';
import { decodeStats, decodeStatsVolumes } from '../../../src/agent/codec.js';

function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

function entry(kind: number, total: number, used: number, flags: number, path: string): Buffer {
  return Buffer.concat([u64(kind), u64(total), u64(used), u64(flags), u64(Buffer.byteLength(path)), Buffer.from(path)]);
}

const fixed = Buffer.concat([1, 2, 3, 4, 5, 6].map(u64));

describe('STATS volume entries', () => {
  it('decodes each entry after the fixed fields, which read as before', () => {
    const body = Buffer.concat([fixed, entry(1, 8388608, 4096, 0, '/data'), entry(2, 32 << 20, 1 << 20, 1, '/store')]);
    expect(decodeStats(body)).toEqual({ upperTotalBytes: 1, upperUsedBytes: 2, memTotalBytes: 3, memAvailableBytes: 4, uptimeMs: 5, runningProcesses: 6 });
    expect(decodeStatsVolumes(body)).toEqual([
      { guestPath: '/data', kind: 'ram', totalBytes: 8388608, usedBytes: 4096, readOnly: false },
      { guestPath: '/store', kind: 'storage', totalBytes: 32 << 20, usedBytes: 1 << 20, readOnly: true },
    ]);
  });

  it('an older agent sends none; an unknown kind is skipped; a path past the end is a protocol error', () => {
    expect(decodeStatsVolumes(fixed)).toEqual([]);
    expect(decodeStatsVolumes(Buffer.concat([fixed, entry(9, 1, 1, 0, '/x'), entry(1, 2, 1, 0, '/y')])).map((v) => v.guestPath)).toEqual(['/y']);
    const truncated = Buffer.concat([fixed, entry(1, 1, 1, 0, '/data')]).subarray(0, 48 + 42);
    expect(() => decodeStatsVolumes(truncated)).toThrow(expect.objectContaining({ code: 'agent.protocol' }));
  });
});
