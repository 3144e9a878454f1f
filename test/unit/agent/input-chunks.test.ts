import { describe, expect, it } from 'vitest';
import { chunkInput, INPUT_CHUNK_BYTES, RequestWriter } from '../../../src/agent/codec.js';
import { PROTO_MAX_ARRAY, PROTO_MAX_BYTES } from '../../../src/agent/protocol.js';
import { isGvmiTestError } from '../../../src/errors.js';

describe('transfers within the protocol limits', () => {
  it('chunkInput cuts data into pieces no larger than a chunk, in order, and keeps an empty EOF', () => {
    expect(INPUT_CHUNK_BYTES).toBeLessThan(PROTO_MAX_BYTES);
    const data = Buffer.alloc(17 * 1024 * 1024 + 3, 7);
    const chunks = chunkInput(data);
    expect(chunks.every((c) => c.length <= INPUT_CHUNK_BYTES && c.length > 0)).toBe(true);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect(chunkInput(Buffer.alloc(0))).toEqual([Buffer.alloc(0)]);
    expect(chunkInput(Buffer.from('abc'), 2).map(String)).toEqual(['ab', 'c']);
  });

  it('RequestWriter refuses a field or a list the guest could not take', () => {
    const big = (): unknown => new RequestWriter(1n, 64).bytes(Buffer.alloc(PROTO_MAX_BYTES + 1));
    expect(big).toThrow(/at most 16777216 bytes/);
    try { big(); } catch (e) { expect(isGvmiTestError(e, 'usage')).toBe(true); }
    expect(() => new RequestWriter(1n, 2).array(new Array<string>(PROTO_MAX_ARRAY + 1).fill(''))).toThrow(/at most 65536/);
    expect(new RequestWriter(1n, 64).bytes(Buffer.alloc(PROTO_MAX_BYTES)).finish().length).toBe(9 + 8 + PROTO_MAX_BYTES + 1);
  });
});
