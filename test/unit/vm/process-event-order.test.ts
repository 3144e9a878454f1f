/**
 * Process events in order, held in one place (GuestProcess) until their first listener, with no
 * timer. The guest side is a real Unix socket that answers RUN_PROCESS and sends the process's
 * output and death in the same write, the case that made events arrive before the caller had
 * the process object.
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../../../src/agent/agent-client.js';
import { RespType } from '../../../src/agent/protocol.js';
import { GvmiTestError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logger.js';
import { AgentTransport } from '../../../src/vm/agent-transport.js';
import type { GuestProcess } from '../../../src/vm/guest-process.js';
import { ProcessRunner } from '../../../src/vm/process-runner.js';

function frame(id: bigint, type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeBigUInt64LE(id);
  head.writeUInt8(type, 8);
  return Buffer.concat([head, body]);
}
const u64 = (n: bigint | number): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };
const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const output = (pid: bigint, fd: number, text: string): Buffer => frame(0n, RespType.NOTIFY_OUTPUT_DATA, Buffer.concat([u64(pid), u32(fd), u64(text.length), Buffer.from(text)]));
const died = (pid: bigint, status: number): Buffer => frame(0n, RespType.NOTIFY_PROCESS_DIED, Buffer.concat([u64(pid), Buffer.from([status, 0])]));

let dir: string;
let server: Server;
let guest: Socket;
let client: AgentClient;
let runner: ProcessRunner<Promise<number>>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-event-order-'));
  server = createServer();
  server.listen(join(dir, 'agent.sock'));
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const socket = createConnection(join(dir, 'agent.sock'));
  await once(socket, 'connect');
  [guest] = await accepted;
  client = new AgentClient(socket, silentLogger);
  const vm = {
    volumes: [],
    info: { runtimeVersion: '0.4' as const, metadata: { env: [] } },
    stats: async () => ({ overlay: { totalBytes: 1, usedBytes: 0 } }),
    overlayUsage: async () => [],
  };
  runner = new ProcessRunner(vm, new AgentTransport({
    client,
    metadata: { env: [], workingDir: '/', user: '', volumes: [], entrypoint: [], cmd: [] } as never,
    consoleLog: join(dir, 'console.log'),
    volumes: [],
    assertUsable: () => {},
    usable: () => true,
  }));
});
afterEach(async () => {
  client.close(new GvmiTestError('vm.stopped', 'test over'));
  guest.destroy();
  server.close();
  await rm(dir, { recursive: true, force: true });
});

/** The guest answers the next request with process id `pid`, and in the same write sends `after`. */
function answerRunProcess(pid: bigint, after: Buffer[]): void {
  guest.once('data', (request: Buffer) => {
    const id = request.readBigUInt64LE(0);
    guest.write(Buffer.concat([frame(id, RespType.OK_U64, u64(pid)), ...after]));
  });
}

function record(p: GuestProcess): string[] {
  const events: string[] = [];
  p.on('stdout', (d) => events.push(`out:${d.toString()}`));
  p.on('stderr', (d) => events.push(`err:${d.toString()}`));
  p.on('exit', (r) => events.push(`exit:${r.exitCode}`));
  return events;
}

describe('process events', () => {
  it('output and death in the same read as the RUN_PROCESS answer reach listeners attached after spawn(), in order', async () => {
    answerRunProcess(7n, [output(7n, 1, 'one '), output(7n, 2, 'err'), output(7n, 1, 'two'), died(7n, 3)]);
    const p = await runner.spawn(['x']);
    const events = record(p);
    const r = await p.wait();
    expect(events).toEqual(['out:one ', 'err:err', 'out:two', 'exit:3']);
    expect(r).toMatchObject({ stdout: 'one two', stderr: 'err', exitCode: 3, signal: null });
    expect(p.id).toBe(7n);
  });

  it('held without a timer: delivered before the event loop turns (a setImmediate queued first runs after)', async () => {
    answerRunProcess(8n, [output(8n, 1, 'a'), died(8n, 0)]);
    const p = await runner.spawn(['x']);
    let turned = false;
    setImmediate(() => { turned = true; });
    const events = record(p);
    await Promise.resolve();
    expect(events).toEqual(['out:a', 'exit:0']);
    expect(turned).toBe(false);
  });

  it('listeners attached after the caller awaited other work (a later turn) still get everything, in order', async () => {
    answerRunProcess(9n, [output(9n, 1, 'early'), died(9n, 1)]);
    const p = await runner.spawn(['x']);
    await new Promise((r) => setTimeout(r, 20));
    const events = record(p);
    await p.wait();
    await Promise.resolve();
    expect(events).toEqual(['out:early', 'exit:1']);
  });

  it('once listening, events come as they arrive; a later listener gets only what follows', async () => {
    answerRunProcess(10n, [output(10n, 1, 'first')]);
    const p = await runner.spawn(['x']);
    const events = record(p);
    await Promise.resolve();
    expect(events).toEqual(['out:first']);
    const late: string[] = [];
    p.on('stdout', (d) => late.push(d.toString()));
    guest.write(Buffer.concat([output(10n, 1, 'second'), died(10n, 0)]));
    await p.wait();
    expect(events).toEqual(['out:first', 'out:second', 'exit:0']);
    expect(late).toEqual(['second']);
  });

  it('waiting for the result first lets go of what was held (exec: nobody listens), and the result is whole', async () => {
    answerRunProcess(11n, [output(11n, 1, 'kept'), died(11n, 0)]);
    const p = await runner.spawn(['x']);
    const r = await p.wait();
    const events = record(p);
    await Promise.resolve();
    expect(events).toEqual([]);
    expect(r.stdout).toBe('kept');
  });

  it('the channel closing under a running process rejects its result', async () => {
    answerRunProcess(12n, [output(12n, 1, 'partial')]);
    const p = await runner.spawn(['x']);
    guest.destroy();
    await expect(p.wait()).rejects.toMatchObject({ code: 'vm.stopped' });
  });
});
