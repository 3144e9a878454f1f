import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { QmpClient, type QmpEvent } from '../../../src/qemu/qmp-client.js';

/** A scripted QEMU monitor: greets, then answers each command with `answer(command)`. */
async function fakeMonitor(answer: (command: Record<string, unknown>, socket: Socket) => void): Promise<{ client: QmpClient; close: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'gvmi-qmp-'));
  const path = join(dir, 'qmp.sock');
  const server = createServer((socket) => {
    socket.write('{"QMP": {"version": {}, "capabilities": []}}\r\n');
    let buffered = '';
    socket.on('data', (d) => {
      buffered += d.toString();
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        answer(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>, socket);
        buffered = buffered.slice(nl + 1);
      }
    });
  });
  server.listen(path);
  await once(server, 'listening');
  const socket = connect(path);
  await once(socket, 'connect');
  const client = new QmpClient(socket);
  return { client, close: async () => { client.close(); server.close(); await rm(dir, { recursive: true, force: true }); } };
}

let close: (() => Promise<void>) | undefined;
afterEach(async () => { await close?.(); close = undefined; });

describe('QmpClient', () => {
  it('negotiates, answers in order, passes events on, and turns errors into snapshot.failed', async () => {
    const events: QmpEvent[] = [];
    const monitor = await fakeMonitor((c, socket) => {
      if (c['execute'] === 'query-status') {
        // An event can come between a command and its answer; it must not be taken for the answer.
        socket.write('{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}\n');
        socket.write('{"return": {"status": "paused"}}\n');
      } else if (c['execute'] === 'bogus') {
        socket.write('{"error": {"class": "CommandNotFound", "desc": "The command bogus has not been found"}}\n');
      } else {
        socket.write('{"return": {}}\n');
      }
    });
    close = monitor.close;
    monitor.client.on('event', (e) => events.push(e));
    await monitor.client.negotiate();
    const [status, failure, done] = await Promise.allSettled([
      monitor.client.execute('query-status'),
      monitor.client.execute('bogus'),
      monitor.client.execute('cont'),
    ]);
    expect(status).toEqual({ status: 'fulfilled', value: { status: 'paused' } });
    expect(failure).toMatchObject({ status: 'rejected', reason: { code: 'snapshot.failed', message: expect.stringContaining('has not been found') } });
    expect(done).toEqual({ status: 'fulfilled', value: {} });
    expect(events.map((e) => e.event)).toEqual(['STOP']);
  });

  it('rejects pending and later calls when the monitor goes away', async () => {
    const monitor = await fakeMonitor((c, socket) => {
      if (c['execute'] === 'migrate') socket.destroy();
      else socket.write('{"return": {}}\n');
    });
    close = monitor.close;
    await monitor.client.negotiate();
    await expect(monitor.client.execute('migrate', { uri: 'unix:/x' })).rejects.toMatchObject({ code: 'snapshot.failed' });
    await expect(monitor.client.execute('cont')).rejects.toMatchObject({ code: 'snapshot.failed' });
  });
});
