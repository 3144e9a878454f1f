/** The switch over real UDP sockets on 127.0.0.1: frames as a provider's NIC sends them. */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameSwitch } from '../../../src/network/frame-switch.js';

const BROADCAST = 'ff:ff:ff:ff:ff:ff';

function frame(dst: string, src: string, payload: string): Buffer {
  const mac = (m: string): Buffer => Buffer.from(m.split(':').map((x) => parseInt(x, 16)));
  return Buffer.concat([mac(dst), mac(src), Buffer.from([0x08, 0x00]), Buffer.from(payload)]);
}

interface Port { socket: Socket; port: number; got: string[] }

describe('the VPN frame switch', () => {
  const open: Socket[] = [];
  let fabric: FrameSwitch | undefined;
  afterEach(async () => {
    for (const s of open.splice(0)) s.close();
    await fabric?.close();
  });

  async function port(): Promise<Port> {
    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    open.push(socket);
    const p: Port = { socket, port: socket.address().port, got: [] };
    socket.on('message', (m) => p.got.push(m.subarray(14).toString()));
    return p;
  }

  async function send(from: Port, data: Buffer): Promise<void> {
    await new Promise<void>((resolve) => from.socket.send(data, fabric!.port, '127.0.0.1', () => resolve()));
  }

  /** Waits until each port received what it should (a marker frame broadcast last bounds the wait). */
  async function settle(ports: Port[], count: number[]): Promise<void> {
    for (let i = 0; i < ports.length; i++) while (ports[i]!.got.length < count[i]!) await once(ports[i]!.socket, 'message');
  }

  it('floods broadcast and unknown destinations to the other ports, then sends by learned MAC only', async () => {
    fabric = await FrameSwitch.start();
    const [a, b, c] = [await port(), await port(), await port()];
    for (const p of [a, b, c]) fabric.attach(p.port);
    await send(a, frame(BROADCAST, '90:13:c0:a8:07:02', 'hello-all'));
    await settle([b, c], [1, 1]);
    expect([a.got, b.got, c.got]).toEqual([[], ['hello-all'], ['hello-all']]);
    // b answers a by MAC: only a gets it (a's MAC was learned from its broadcast).
    await send(b, frame('90:13:c0:a8:07:02', '90:13:c0:a8:07:03', 'to-a'));
    await send(c, frame(BROADCAST, '90:13:c0:a8:07:04', 'marker'));
    await settle([a, b], [2, 2]);
    expect(a.got).toEqual(['to-a', 'marker']);
    expect(b.got).toEqual(['hello-all', 'marker']);
    expect(c.got).toEqual(['hello-all']);
  });

  it('drops frames from ports never attached', async () => {
    fabric = await FrameSwitch.start();
    const [a, stranger] = [await port(), await port()];
    fabric.attach(a.port);
    await send(stranger, frame(BROADCAST, '90:13:00:00:00:09', 'intruder'));
    const b = await port();
    fabric.attach(b.port);
    await send(b, frame(BROADCAST, '90:13:00:00:00:0a', 'member'));
    await settle([a], [1]);
    expect(a.got).toEqual(['member']);
  });
});
