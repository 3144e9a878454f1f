import { describe, expect, it } from 'vitest';
import {
  bytesReply, clockRequest, decodeStats, decodeUpperUsage, emptyRequest, encodeRequest, helloRequest, killRequest, MessageReader,
  mountVolumeRequest, putInputRequests, RequestWriter, resizeRequest, resumedRequest, runProcessRequest, signalRequest, u64Reply,
  upperUsageRequest, type AgentRequest, type GuestMessage,
} from '../../../src/agent/codec.js';
import { MsgType, PROTO_MAX_BYTES, PROTO_MAX_MESSAGE, PROTO_UPPER_USAGE_MAX_FILES, RespType, SubRun } from '../../../src/agent/protocol.js';
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

  it('takes a message of PROTO_MAX_MESSAGE (proto.h) bytes and refuses one byte more', () => {
    const announced = (length: number): string => {
      try {
        new MessageReader().push(frame(1n, RespType.OK_BYTES, u64(length)));
        return 'accepted';
      } catch (e) {
        return isGvmiTestError(e) ? e.code : String(e);
      }
    };
    expect(announced(PROTO_MAX_MESSAGE - 8)).toBe('accepted');
    expect(announced(PROTO_MAX_MESSAGE - 7)).toBe('agent.protocol');
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

/** The bytes of a request as proto.h spells them: u64 id | u8 type | parts | u8 0. */
function request(id: number, type: number, ...parts: Buffer[]): Buffer {
  return Buffer.concat([u64(id), Buffer.of(type), ...parts, Buffer.of(0)]);
}
const u8 = (n: number): Buffer => Buffer.of(n);
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
const bytes = (s: string | Buffer): Buffer => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)]);
const encoded = (r: AgentRequest, id = 9): Buffer => encodeRequest(BigInt(id), r);

describe('request bodies (proto.h, byte for byte)', () => {
  it('HELLO carries the extension version as a u32', () => {
    expect(encoded(helloRequest(2))).toEqual(request(9, 70, u8(1), u32(2)));
  });

  it('RUN_PROCESS: BIN, ARG, ENV, then CWD/UID/GID when given, push redirects for stdout and stderr', () => {
    expect(encoded(runProcessRequest({ argv: ['/bin/echo', 'hi'], env: ['A=1'] }))).toEqual(request(9, 2,
      u8(1), bytes('/bin/echo'),
      u8(2), u64(2), bytes('/bin/echo'), bytes('hi'),
      u8(3), u64(1), bytes('A=1'),
      u8(6), u32(1), u8(64),
      u8(6), u32(2), u8(64)));
    expect(encoded(runProcessRequest({ bin: '/bin/sh', argv: ['sh'], env: [], cwd: '/w', uid: 1000, gid: 100, stdinPipe: true }))).toEqual(request(9, 2,
      u8(1), bytes('/bin/sh'),
      u8(2), u64(1), bytes('sh'),
      u8(3), u64(0),
      u8(7), bytes('/w'),
      u8(4), u32(1000),
      u8(5), u32(100),
      u8(6), u32(0), u8(1), u64(65536),
      u8(6), u32(1), u8(64),
      u8(6), u32(2), u8(64)));
  });

  it('RUN_PROCESS with a pseudo-terminal sends PTY rows and cols and no redirects', () => {
    expect(encoded(runProcessRequest({ argv: ['sh'], env: [], pty: { rows: 24, cols: 80 }, stdinPipe: true }))).toEqual(request(9, 2,
      u8(1), bytes('sh'), u8(2), u64(1), bytes('sh'), u8(3), u64(0), u8(64), u32(24), u32(80)));
  });

  it('KILL_PROCESS, SIGNAL, RESIZE, MOUNT_VOLUME, UPPER_USAGE', () => {
    expect(encoded(killRequest(7n))).toEqual(request(9, 3, u8(1), u64(7)));
    expect(encoded(signalRequest(7n, 15))).toEqual(request(9, 65, u8(1), u64(7), u8(2), u32(15)));
    expect(encoded(resizeRequest(7n, 40, 120))).toEqual(request(9, 68, u8(1), u64(7), u8(2), u32(40), u8(3), u32(120)));
    expect(encoded(mountVolumeRequest('mnt0', '/data'))).toEqual(request(9, 4, u8(1), bytes('mnt0'), u8(2), bytes('/data')));
    expect(encoded(upperUsageRequest(10))).toEqual(request(9, 67, u8(1), u32(10)));
  });

  it('QUIT, STATS and SYNC_FS have empty bodies', () => {
    expect(encoded(emptyRequest(1))).toEqual(request(9, 1));
    expect(encoded(emptyRequest(66))).toEqual(request(9, 66));
    expect(encoded(emptyRequest(8))).toEqual(request(9, 8));
  });

  it('RESUMED carries the time and the entropy, and refuses more entropy than the agent takes', () => {
    const entropy = Buffer.alloc(64, 7);
    expect(encoded(resumedRequest(5n, entropy))).toEqual(request(9, 69, u8(1), u64(5), u8(2), bytes(entropy)));
    expect(() => resumedRequest(5n, Buffer.alloc(513))).toThrow(/at most 512/);
  });

  it('CLOCK sends a negative step as two\'s complement and no step for 0', () => {
    expect(encoded(clockRequest(0n))).toEqual(request(9, 71));
    const minusOne = Buffer.alloc(8, 0xff);
    expect(encoded(clockRequest(-1n))).toEqual(request(9, 71, u8(1), minusOne));
  });

  it('PUT_INPUT: data in chunks of at most 1 MiB, EOF on the last only; an EOF alone is one request', () => {
    const data = Buffer.alloc(1024 * 1024 + 3, 1);
    const requests = putInputRequests(4n, data, true).map((r, i) => encoded(r, i + 1));
    expect(requests).toHaveLength(2);
    // Buffer.equals: a deep toEqual of a MiB takes seconds.
    expect(requests[0]!.equals(request(1, 64, u8(1), u64(4), u8(2), bytes(data.subarray(0, 1024 * 1024))))).toBe(true);
    expect(requests[1]!.equals(request(2, 64, u8(1), u64(4), u8(2), bytes(data.subarray(1024 * 1024)), u8(3)))).toBe(true);
    expect(putInputRequests(4n, Buffer.alloc(0), true).map((r) => encoded(r))).toEqual([request(9, 64, u8(1), u64(4), u8(3))]);
    expect(putInputRequests(4n, Buffer.from('x'), false).map((r) => encoded(r))).toEqual([request(9, 64, u8(1), u64(4), u8(2), bytes('x'))]);
  });
});

describe('limits of proto.h on requests', () => {
  it('a request over PROTO_MAX_MESSAGE is refused before it is sent (the agent would stop the VM)', () => {
    const field = Buffer.alloc(PROTO_MAX_BYTES);
    const under = { type: MsgType.PUT_INPUT, write: (w: RequestWriter) => { for (let i = 0; i < 3; i++) w.sub(1).bytes(field); } };
    expect(encoded(under).length).toBeLessThanOrEqual(PROTO_MAX_MESSAGE);
    const over = { type: MsgType.PUT_INPUT, write: (w: RequestWriter) => { for (let i = 0; i < 4; i++) w.sub(1).bytes(field); } };
    expect(() => encoded(over)).toThrow(expect.objectContaining({ code: 'usage', message: expect.stringContaining(`at most ${PROTO_MAX_MESSAGE} bytes`) }));
  });

  it('UPPER_USAGE asks for 1 to PROTO_UPPER_USAGE_MAX_FILES files', () => {
    expect(encoded(upperUsageRequest(PROTO_UPPER_USAGE_MAX_FILES))).toEqual(request(9, 67, u8(1), u32(PROTO_UPPER_USAGE_MAX_FILES)));
    for (const n of [0, PROTO_UPPER_USAGE_MAX_FILES + 1, 2.5]) expect(() => upperUsageRequest(n)).toThrow(expect.objectContaining({ code: 'usage' }));
  });
});

describe('reply bodies', () => {
  it('STATS: six u64 in proto_stats order; a short body is agent.protocol', () => {
    const body = Buffer.concat([1, 2, 3, 4, 5, 6].map(u64));
    expect(decodeStats(body)).toEqual({ upperTotalBytes: 1, upperUsedBytes: 2, memTotalBytes: 3, memAvailableBytes: 4, uptimeMs: 5, runningProcesses: 6 });
    expect(() => decodeStats(body.subarray(0, 40))).toThrow(expect.objectContaining({ code: 'agent.protocol' }));
  });

  it('UPPER_USAGE: repeated (u64 size | u64 path length | path); a cut entry is agent.protocol', () => {
    const body = Buffer.concat([u64(4096), bytes('/big'), u64(12), bytes('/d/small')]);
    expect(decodeUpperUsage(body)).toEqual([{ bytes: 4096, path: '/big' }, { bytes: 12, path: '/d/small' }]);
    expect(decodeUpperUsage(Buffer.alloc(0))).toEqual([]);
    expect(() => decodeUpperUsage(body.subarray(0, body.length - 2))).toThrow(expect.objectContaining({ code: 'agent.protocol' }));
    expect(() => decodeUpperUsage(Buffer.concat([body, Buffer.of(1)]))).toThrow(expect.objectContaining({ code: 'agent.protocol' }));
  });

  it('an answer of the wrong kind is agent.protocol, naming the request', () => {
    const ok: GuestMessage = { type: 'ok', id: 1n };
    expect(u64Reply({ type: 'ok-u64', id: 1n, value: 3n }, 'HELLO')).toBe(3n);
    expect(() => u64Reply(ok, 'HELLO')).toThrow(expect.objectContaining({ code: 'agent.protocol', message: 'HELLO answered with ok' }));
    expect(bytesReply({ type: 'ok-bytes', id: 1n, data: Buffer.from('a') }, 'STATS')).toEqual(Buffer.from('a'));
    expect(() => bytesReply(ok, 'STATS')).toThrow(expect.objectContaining({ code: 'agent.protocol' }));
  });
});

describe('errno', () => {
  it('names and explains the errors authors meet', () => {
    expect(errnoName(28)).toBe('ENOSPC');
    expect(describeErrno(2)).toMatch(/^ENOENT: no such file/);
    expect(errnoName(4242)).toBe('errno 4242');
  });
});
