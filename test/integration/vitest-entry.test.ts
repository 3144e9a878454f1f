/**
 * The gvmi-test/vitest entry in use: the fixture against a real VM, and a deliberately broken
 * assertion in a scratch copy of examples/hello printing what the author needs.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject } from 'vitest';
import { RemoteVm, serveVm, startVm, type StartedVm, type VmServer } from '../../src/index.js';
import { vmTest } from '../../src/vitest/index.js';
import type { GuestProcess } from '../../src/vm/guest-process.js';

const it = vmTest({ image: inject('tinyImage'), scope: 'file', reset: 'volumes' });

describe('vmTest fixture (scope file, reset volumes)', () => {
  let firstVm: unknown;
  it('boots a VM for the file', async ({ vm }) => {
    firstVm = vm;
    await vm.exec('echo left-over > /golem/output/x');
    await expect(vm).toHaveFile('/golem/output/x', 'left-over');
  });

  it('reuses it, with the volumes emptied', async ({ vm }) => {
    expect(vm).toBe(firstVm);
    await expect(vm).not.toHaveFile('/golem/output/x');
    await expect(vm).toShadow('/golem/input/baked.txt');
  });
});

describe('vmTest fixture with a served VM (connect, scope file, reset processes)', () => {
  let served: StartedVm | undefined;
  let server: VmServer | undefined;
  beforeAll(async () => {
    served = await startVm({ image: inject('tinyImage') });
    server = await serveVm(served);
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await served?.stop();
  });
  const remote = vmTest({ connect: () => server!.url, scope: 'file', reset: 'processes' });
  let first: unknown;
  let leftRunning: GuestProcess | undefined;

  remote('runs commands in the served VM, matchers included', async ({ vm }) => {
    first = vm;
    expect(vm).toBeInstanceOf(RemoteVm);
    await vm.exec('echo from-the-fixture > /golem/output/y');
    await expect(vm).toHaveFile('/golem/output/y', 'from-the-fixture');
    leftRunning = await vm.spawn('sleep 1000');
  });

  remote('reuses the connection, with the process the last test left running killed', async ({ vm }) => {
    expect(vm).toBe(first);
    await expect(leftRunning!.wait()).resolves.toMatchObject({ signal: 'SIGKILL' });
    expect((await vm.exec('echo again')).stdout).toBe('again\n');
  });
});

describe('a broken assertion in a scratch copy of examples/hello', () => {
  let scratch: string;
  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('prints the command, status, streams, overlay usage and console tail', async () => {
    // Inside the repository, so `gvmi-test/vitest` resolves to this checkout.
    scratch = await mkdtemp(resolve('.tmp/scratch-hello-'));
    await cp(resolve('examples/hello'), scratch, { recursive: true });
    const testFile = join(scratch, 'hello.test.ts');
    let source = await readFile(testFile, 'utf8');
    source = source.replace("toHaveFile('/golem/output/words.count', '9')", "toHaveFile('/golem/output/words.count', '10')");
    source = source.replace("dd if=/dev/zero of=/tmp-big bs=1M count=200", "dd if=/dev/zero of=/tmp-big bs=1M count=20");
    await writeFile(testFile, source);
    const r = await execa('npx', ['vitest', 'run', '--reporter=verbose'], { cwd: scratch, reject: false, env: { NO_COLOR: '1', FORCE_COLOR: '0' } });
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.exitCode).not.toBe(0);
    expect(out).toMatch(/3 passed/);
    // toHaveFile: what is there instead, and the VM state
    expect(out).toContain('expected the VM to have /golem/output/words.count with content "10", but its content is "9\\n"');
    // toFailWithENOSPC: the command, its status and streams, overlay usage and console tail
    expect(out).toContain('expected the command to fail with ENOSPC (no space left on device), but it ended with exit 0');
    expect(out).toContain('command: /bin/sh -c "dd if=/dev/zero of=/tmp-big bs=1M count=20"');
    expect(out).toMatch(/stderr: {2}20\+0 records in/);
    expect(out).toMatch(/overlay: \d+\.\d MiB of 128 MiB used outside volumes/);
    expect(out).toMatch(/\/tmp-big/);
    expect(out).toContain('console (last lines):');
  }, 180_000);
});
