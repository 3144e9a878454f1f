import { describe, expect, it } from 'vitest';
import { MessageReader, RequestWriter, type GuestMessage } from '../../../src/agent/codec.js';
import { MsgType, RespType, SubRun } from '../../../src/agent/protocol.js';
import { describeErrno, errnoName } from '../../../src/agent/errno.js';
import { isGvmiTestError } from '../../../src/errors.js';

function frame(id: bigint, type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeBigUInt64LE(id);
  head.writeUInt8(type, 8);
  return Buffer.concat([head, body]);
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

const stream = Buffer.concat([
  frame(0n, RespType.NOTIFY_EXEC_FAILED, Buffer.concat([u64(6), Buffer.from([4, 2, 0, 0, 0])])),
  frame(1n, RespType.OK_U64, u64(7)),
  frame(0n, RespType.NOTIFY_OUTPUT_DATA, Buffer.concat([u64(7), Buffer.from([1, 0, 0, 0]), u64(5), Buffer.from('hello')])),
  frame(2n, RespType.ERR, Buffer.from([2, 0, 0, 0])),
  frame(3n, RespType.OK_BYTES, Buffer.concat([u64(3), Buffer.from('abc')])),
  frame(0n, RespType.NOTIFY_PROCESS_DIED, Buffer.concat([u64(7), Buffer.from([3, 0])])),
  frame(4n, RespType.OK, Buffer.alloc(0)),
]);

const expected: GuestMessage[] = [
  { type: 'exec-failed', processId: 6n, step: 4, errno: 2 },
  { type: 'ok-u64', id: 1n, value: 7n },
  { type: 'output-data', processId: 7n, fd: 1, data: Buffer.from('hello') },
  { type: 'err', id: 2n, errno: 2 },
  { type: 'ok-bytes', id: 3n, data: Buffer.from('abc') },
  { type: 'process-died', processId: 7n, status: 3, kind: 0 },
  { type: 'ok', id: 4n },
];

describe('MessageReader', () => {
  it('decodes a stream delivered in one piece', () => {
    expect(new MessageReader().push(stream)).toEqual(expected);
  });

  it('decodes the same stream split at every possible point, and byte by byte', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      const reader = new MessageReader();
      const got = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
      expect(got).toEqual(expected);
    }
    const reader = new MessageReader();
    const got: GuestMessage[] = [];
    for (const byte of stream) got.push(...reader.push(Buffer.of(byte)));
    expect(got).toEqual(expected);
  });

  it('rejects an unknown message type and absurd lengths with agent.protocol', () => {
    const bad = (b: Buffer): string => {
      try {
        new MessageReader().push(b);
        return 'no error';
      } catch (e) {
        return isGvmiTestError(e) ? e.code : String(e);
      }
    };
    expect(bad(frame(1n, 99, Buffer.alloc(0)))).toBe('agent.protocol');
    expect(bad(frame(1n, RespType.OK_BYTES, u64(2 ** 40)))).toBe('agent.protocol');
  });
});

describe('RequestWriter', () => {
  it('encodes id, type, sub-messages and the terminating zero as proto.h says', () => {
    const bytes = new RequestWriter(5n, MsgType.RUN_PROCESS).sub(SubRun.BIN).bytes('/bin/true').sub(SubRun.ARG).array(['true']).finish();
    const expectedBytes = Buffer.concat([
      u64(5), Buffer.of(2),
      Buffer.of(1), u64(9), Buffer.from('/bin/true'),
      Buffer.of(2), u64(1), u64(4), Buffer.from('true'),
      Buffer.of(0),
    ]);
    expect(bytes.equals(expectedBytes)).toBe(true);
  });
});

describe('errno', () => {
  it('names and explains the errors authors meet', () => {
    expect(errnoName(28)).toBe('ENOSPC');
    expect(describeErrno(2)).toMatch(/^ENOENT: no such file/);
    expect(errnoName(4242)).toBe('errno 4242');
  });
});
