/**
 * The test-side port of ya-runtime-vm's Rust host (test/helpers/golem-host.ts and
 * golem-response-parser.ts) checked on its own, without a VM: requests byte for byte as
 * guest_agent_comm.rs builds them, and the parser refusing what response_parser.rs refuses, at
 * the right offset. A wrong helper would make upstream-wire.test.ts prove nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeAddAddress, encodeAddHosts, encodeCreateNetwork, encodeKill, encodeMount, encodeQueryOutput, encodeQuit, encodeRunProcess, GolemHost, U64_MAX } from '../../helpers/golem-host.js';
import { StrictResponseParser } from '../../helpers/golem-response-parser.js';

const u64 = (v: bigint | number): string => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b.toString('hex');
};
const u32 = (v: number): string => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b.toString('hex');
};
const bytes = (s: string): string => u64(Buffer.byteLength(s)) + Buffer.from(s).toString('hex');
const hex = (h: string): Buffer => Buffer.from(h, 'hex');

describe('requests as guest_agent_comm.rs encodes them', () => {
  it('QUIT: id, type 1, END', () => {
    expect(encodeQuit(1n).toString('hex')).toBe(`${u64(1)}0100`);
  });

  it('RUN_PROCESS: BIN, ARG, ENV, UID, GID, RFDs by fd, CWD, ENT, END', () => {
    const buf = encodeRunProcess(7n, {
      bin: '/bin/sh', argv: ['sh', '-c', 'x'], env: ['A=1'], uid: 1000, gid: 100,
      fds: [undefined, { kind: 'pipeCyclic', size: 4096n }, { kind: 'file', path: '/o' }], cwd: '/w', entrypoint: true,
    });
    expect(buf.toString('hex')).toBe([
      u64(7), '02',
      '01', bytes('/bin/sh'),
      '02', u64(3), bytes('sh'), bytes('-c'), bytes('x'),
      '03', u64(1), bytes('A=1'),
      '04', u32(1000),
      '05', u32(100),
      '06', u32(1), '02', u64(4096),
      '06', u32(2), '00', bytes('/o'),
      '07', bytes('/w'),
      '08',
      '00',
    ].join(''));
  });

  it('RUN_PROCESS without env, fds or cwd sends none of them', () => {
    const buf = encodeRunProcess(1n, { bin: '/b', argv: ['b'], uid: 0, gid: 0, fds: [undefined, undefined, { kind: 'pipeBlocking', size: 8192n }] });
    expect(buf.toString('hex')).toBe([u64(1), '02', '01', bytes('/b'), '02', u64(1), bytes('b'), '04', u32(0), '05', u32(0), '06', u32(2), '01', u64(8192), '00'].join(''));
  });

  it('KILL, MOUNT, QUERY_OUTPUT', () => {
    expect(encodeKill(2n, 5n).toString('hex')).toBe(`${u64(2)}0301${u64(5)}00`);
    expect(encodeMount(3n, 'mnt0', '/golem/input').toString('hex')).toBe(`${u64(3)}0401${bytes('mnt0')}02${bytes('/golem/input')}00`);
    expect(encodeQueryOutput(4n, 9n, 1, 0n, U64_MAX).toString('hex')).toBe(`${u64(4)}0601${u64(9)}020103${u64(0)}04ffffffffffffffff00`);
  });

  it('NET_HOST puts the ip before the hostname; NET_CTL flags and interface are u16', () => {
    expect(encodeAddHosts(5n, [['peer', '10.0.0.1']]).toString('hex')).toBe(`${u64(5)}0a01${bytes('10.0.0.1')}${bytes('peer')}00`);
    expect(encodeAddAddress(6n, '10.0.0.2', '255.0.0.0', 0).toString('hex')).toBe(`${u64(6)}0901010005${bytes('10.0.0.2')}03${bytes('255.0.0.0')}06000000`);
    expect(encodeCreateNetwork(7n, '10.0.0.0', '255.0.0.0', '10.0.0.1', 1).toString('hex')).toBe(`${u64(7)}0901010002${bytes('10.0.0.0')}03${bytes('255.0.0.0')}04${bytes('10.0.0.1')}06010000`);
  });
});

describe('replies as response_parser.rs reads them', () => {
  const all = hex([
    `${u64(1)}00`,
    `${u64(2)}01${u64(42)}`,
    `${u64(3)}02${bytes('out')}`,
    `${u64(4)}03${u32(22)}`,
    `${u64(0)}04${u64(9)}${u32(2)}`,
    `${u64(0)}05${u64(9)}0901`,
  ].join(''));

  it('types 0-5, fed one byte at a time', () => {
    const p = new StrictResponseParser();
    const msgs = [...all].flatMap((b) => p.push(Buffer.from([b])));
    p.end();
    expect(msgs.map((m) => (m.kind === 'response' ? m.resp : m.notification))).toEqual([
      { type: 'ok' },
      { type: 'okU64', value: 42n },
      { type: 'okBytes', bytes: Buffer.from('out') },
      { type: 'err', code: 22 },
      { type: 'outputAvailable', id: 9n, fd: 2 },
      { type: 'processDied', id: 9n, status: 9, exitType: 'killed' },
    ]);
    expect(msgs.map((m) => m.offset)).toEqual([0, 9, 26, 46, 59, 80]);
    expect(p.violation).toBeUndefined();
    expect([p.receivedBytes, p.unparseableBytes]).toEqual([all.length, 0]);
  });

  it('an unknown type is refused at its byte, and nothing after it is parsed', () => {
    const p = new StrictResponseParser();
    const ready = `${u64(0)}40${u64(1234)}`; // gvmi-test's old READY extension (type 64)
    const msgs = p.push(hex(`${u64(1)}00${ready}${u64(2)}00`));
    expect(msgs).toHaveLength(1);
    expect(p.violation?.offset).toBe(9 + 8);
    expect(p.violation?.message).toMatch(/type 64/);
    expect(p.unparseableBytes).toBe(17 + 9);
  });

  it('a notification with a non-zero id is refused at its first byte', () => {
    const p = new StrictResponseParser();
    p.push(hex(`${u64(1)}00${u64(5)}04${u64(9)}${u32(1)}`));
    expect(p.violation?.offset).toBe(9);
    expect(p.violation?.message).toMatch(/OUTPUT_AVAILABLE with message id 5/);
    const q = new StrictResponseParser();
    q.push(hex(`${u64(3)}05${u64(9)}0000`));
    expect(q.violation?.offset).toBe(0);
  });

  it('an exit type other than 0-2 is refused at its byte', () => {
    const p = new StrictResponseParser();
    p.push(hex(`${u64(0)}05${u64(9)}0003`));
    expect(p.violation?.offset).toBe(18);
  });

  it('a short body or trailing bytes at the end of the stream are unparseable', () => {
    const short = new StrictResponseParser();
    short.push(hex(`${u64(1)}00${u64(2)}01${u32(5)}`)); // OK_U64 with only 4 of its 8 value bytes
    expect(short.violation).toBeUndefined();
    short.end();
    expect(short.violation?.offset).toBe(9);
    expect(short.unparseableBytes).toBe(13);

    const trailing = new StrictResponseParser();
    trailing.push(hex(`${u64(1)}00aabbcc`));
    trailing.end();
    expect(trailing.violation?.offset).toBe(9);
    expect(trailing.unparseableBytes).toBe(3);

    const longBytes = new StrictResponseParser();
    longBytes.push(hex(`${u64(1)}02${u64(10)}414243`)); // OK_BYTES promising 10, giving 3
    longBytes.end();
    expect(longBytes.violation?.offset).toBe(0);
  });
});

describe('GolemHost: what GuestAgent checks on top of the parser', () => {
  let dir: string | undefined;
  let server: Server | undefined;
  afterEach(async () => {
    server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** A fake guest: answers each request with `reply(msgId, request)`. */
  async function fakeGuest(reply: (msgId: bigint, type: number) => Buffer): Promise<string> {
    dir = await mkdtemp(join(tmpdir(), 'golem-host-'));
    const path = join(dir, 'agent.sock');
    server = createServer((socket: Socket) => {
      socket.on('data', (d: Buffer) => socket.write(reply(d.readBigUInt64LE(0), d.readUInt8(8))));
    });
    server.listen(path);
    await once(server, 'listening');
    return path;
  }

  it('ids count from 1; a reply of the wrong kind or with another id is a violation', async () => {
    const seen: bigint[] = [];
    const path = await fakeGuest((id, type) => {
      seen.push(id);
      if (type === 4) return hex(`${u64(id)}01${u64(1)}`); // OK_U64 to a MOUNT
      if (type === 3) return hex(`${u64(id + 100n)}00`); // OK with another id
      return hex(`${u64(id)}00`);
    });
    const host = await GolemHost.connect(path, { timeoutSec: 0 });
    expect(await host.quit()).toEqual({ ok: true, value: undefined });
    await expect(host.mount('mnt0', '/x')).rejects.toThrow(/Invalid response/);
    await expect(host.kill(1n)).rejects.toThrow(/different ID/);
    expect(seen).toEqual([1n, 2n, 3n]);
    expect(host.problems()).toHaveLength(2);
    await host.close();
  });

  it('retries a missing socket once a second, then gives up', async () => {
    dir = await mkdtemp(join(tmpdir(), 'golem-host-'));
    await expect(GolemHost.connect(join(dir, 'missing.sock'), { timeoutSec: 1 })).rejects.toThrow(/Could not connect/);
  });
});
