/**
 * Stdin larger than one protocol field (PROTO_MAX_BYTES, 16 MiB) reaches the process whole, in a
 * local VM and through `serve` (whose frames are at most 2 MiB): every transfer on a channel is
 * cut to that channel's limits.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { describeWithVm } from '../../src/vitest/index.js';
import { PROTO_MAX_BYTES } from '../../src/agent/protocol.js';
import { serveVm, type VmServer } from '../../src/server/ws-server.js';
import { connectVm, type RemoteVm } from '../../src/server/ws-client.js';

const SIZE = 17 * 1024 * 1024;
const data = randomBytes(SIZE);
const md5 = createHash('md5').update(data).digest('hex');

describeWithVm('stdin over the protocol limit', { image: inject('tinyImage'), testTimeoutMs: 12_000 }, (vm) => {
  // The same VM served, and a connection to it: ended before describeWithVm stops the VM.
  let server: VmServer;
  let remote: RemoteVm;
  beforeAll(async () => {
    server = await serveVm(vm());
    remote = await connectVm(server.url);
  });
  afterAll(async () => {
    await remote?.stop();
    await server?.close();
  });

  it('17 MiB of stdin through /bin/wc -c gives the exact count (and the bytes are intact)', async () => {
    expect(SIZE).toBeGreaterThan(PROTO_MAX_BYTES);
    const count = await vm().exec(['/bin/wc', '-c'], { stdin: data, timeoutMs: 300_000 });
    expect(count.exitCode, count.stderr).toBe(0);
    expect(count.stdout.trim()).toBe(String(SIZE));
    const sum = await vm().exec(['/bin/md5sum'], { stdin: data, timeoutMs: 300_000 });
    expect(sum.stdout.split(/\s+/)[0]).toBe(md5);
  }, 600_000);

  it('written in pieces with write() and end(), the order is kept', async () => {
    const p = await vm().spawn(['/bin/md5sum'], { stdin: 'pipe', timeoutMs: 300_000 });
    const half = Math.floor(SIZE / 2) + 12345;
    // not awaited one by one: the second write must not overtake the first's later chunks
    const writes = [p.write(data.subarray(0, half)), p.end(data.subarray(half))];
    await Promise.all(writes);
    const r = await p.wait();
    expect(r.stdout.split(/\s+/)[0]).toBe(md5);
  }, 600_000);

  it('through serve: 17 MiB of stdin from connectVm', async () => {
    const r = await remote.exec(['/bin/md5sum'], { stdin: data, timeoutMs: 120_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.split(/\s+/)[0]).toBe(md5);
  }, 600_000);

  it('an argument over 16 MiB is refused before anything is sent, and the VM runs on', async () => {
    const e = await vm().exec(['/bin/echo', 'x'.repeat(PROTO_MAX_BYTES + 1)]).then(() => undefined, (error: unknown) => error as { code: string; message: string; hint?: string });
    expect(e?.code).toBe('usage');
    expect(e?.message).toMatch(/at most 16777216 bytes \(16 MiB\) in one field/);
    expect(e?.hint).toMatch(/128 KiB per argument/);
    expect((await vm().exec(['/bin/echo', 'still here'])).stdout).toBe('still here\n');
  });
});
