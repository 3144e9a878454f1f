/**
 * Provider conditions observed from inside a real VM (real QEMU, kernel, init, 9p volumes).
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVm, type StartedVm } from '../../src/index.js';

let vm: StartedVm;
let inputDir: string;

beforeAll(async () => {
  inputDir = await mkdtemp(join(tmpdir(), 'gvmi-input-'));
  await writeFile(join(inputDir, 'from-host.txt'), 'sent by the requestor\n');
  vm = await startVm({ image: inject('tinyImage'), volumes: { '/golem/input': inputDir } });
});

afterAll(async () => {
  await vm?.stop();
});

describe('a provider VM seen from inside', () => {
  it('/ is an overlay whose writable layer is a 128 MB tmpfs', async () => {
    const r = await vm.exec('grep " / " /proc/mounts; df -k / | tail -1');
    expect(r.stdout).toMatch(/^overlay \/ overlay /m);
    const sizeKb = Number(r.stdout.trim().split('\n').pop()!.trim().split(/\s+/)[1]);
    expect(sizeKb).toBe(128 * 1024);
    const stats = await vm.stats();
    expect(stats.overlay.totalBytes).toBe(128 * 1024 * 1024);
  });

  it('a file baked under a VOLUME is hidden; the volume shows the host files', async () => {
    const r = await vm.exec('ls -A /golem/input');
    expect(r.stdout.trim().split('\n')).toEqual(['from-host.txt']);
    expect((await vm.exec('cat /golem/input/from-host.txt')).stdout).toBe('sent by the requestor\n');
    // and outside volumes the image's files are all there
    expect((await vm.exec('cat /golem/resources/static.txt')).stdout).toBe('a static resource\n');
  });

  it('ENTRYPOINT and CMD did not run', async () => {
    const r = await vm.exec('ls -A /golem/output');
    expect(r.stdout).toBe('');
  });

  it('WORKDIR is the working directory, and the image ENV is the environment', async () => {
    const r = await vm.exec('pwd; echo "$GREETING"; echo "$PATH"');
    expect(r.stdout).toBe('/golem/work\nhello from the image\n/bin\n');
  });

  it('per-run env and cwd override the image', async () => {
    const r = await vm.exec('pwd; echo "$GREETING"', { env: { GREETING: 'overridden' }, cwd: '/tmp' });
    expect(r.stdout).toBe('/tmp\noverridden\n');
  });

  it('hostname is golem and /etc/hosts, /etc/resolv.conf are the provider\'s', async () => {
    expect((await vm.exec('hostname')).stdout).toBe('golem\n');
    expect((await vm.exec('cat /etc/resolv.conf')).stdout).toBe('nameserver 1.1.1.1\nnameserver 8.8.8.8\n');
    expect((await vm.exec('grep localhost /etc/hosts')).stdout).toContain('127.0.0.1');
  });

  it('the only network interface is lo, and it is up', async () => {
    expect((await vm.exec('ls /sys/class/net')).stdout).toBe('lo\n');
    const flags = Number((await vm.exec('cat /sys/class/net/lo/flags')).stdout.trim());
    expect(flags & 1).toBe(1); // IFF_UP
    expect((await vm.exec('ping -c 1 -W 2 127.0.0.1')).exitCode).toBe(0);
  });

  it('chown on a 9p volume fails with EPERM (security_model=none)', async () => {
    const r = await vm.exec('touch /golem/output/f && chown 1000:1000 /golem/output/f');
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Operation not permitted/);
  });

  it('files written to a volume appear on the host side', async () => {
    await vm.exec('echo result > /golem/input/written-by-guest.txt');
    expect(await readFile(join(inputDir, 'written-by-guest.txt'), 'utf8')).toBe('result\n');
  });

  it('/proc, /sys, /dev, /dev/pts, /dev/shm and /tmp are mounted', async () => {
    const r = await vm.exec('cut -d" " -f2,3 /proc/mounts');
    for (const line of ['/proc proc', '/sys sysfs', '/dev devtmpfs', '/dev/pts devpts', '/dev/shm tmpfs', '/tmp tmpfs']) {
      expect(r.stdout).toContain(line);
    }
  });
});

describe('running processes', () => {
  it('returns stdout, stderr and the exit status', async () => {
    const r = await vm.exec('echo out; echo err >&2; exit 3');
    expect(r).toMatchObject({ exitCode: 3, signal: null, stdout: 'out\n', stderr: 'err\n' });
  });

  it('argv is passed without a shell', async () => {
    const r = await vm.exec(['/bin/echo', 'a b', '$HOME']);
    expect(r.stdout).toBe('a b $HOME\n');
  });

  it('no output is lost when a process exits right after writing', async () => {
    const r = await vm.exec('head -c 3000000 /dev/zero | tr "\\0" x; echo; exit 0');
    expect(r.stdoutBytes).toBe(3000001);
    expect(r.stdout.length).toBe(3000001);
  });

  it('stdin bytes reach the process', async () => {
    const r = await vm.exec('wc -c; cat', { stdin: 'twelve bytes' });
    expect(r.stdout).toBe('12\n');
  });

  it('a program missing from the image is exec.not-found', async () => {
    await expect(vm.exec(['no-such-program'])).rejects.toMatchObject({ code: 'exec.not-found' });
  });

  it('a timeout kills the whole process group and the VM stays usable', async () => {
    await expect(vm.exec('sleep 100 & sleep 100; echo never', { timeoutMs: 1500 })).rejects.toMatchObject({ code: 'exec.timeout' });
    const left = await vm.exec('ps -o comm | grep -c sleep || true');
    expect(left.stdout.trim()).toBe('0');
  });

  it('signals reach the process; the result names the signal', async () => {
    const p = await vm.spawn('echo started; sleep 100');
    await new Promise<void>((resolve) => p.once('stdout', () => resolve()));
    await p.kill('SIGTERM');
    const r = await p.wait();
    expect(r.exitCode).toBeNull();
    expect(r.signal).toBe('SIGTERM');
  });

  it('streams output live as an async iterable', async () => {
    const p = await vm.spawn('for i in 1 2 3; do echo $i; sleep 0.2; done', { iterate: true });
    const chunks: string[] = [];
    for await (const c of p) chunks.push(c.data.toString());
    expect(chunks.join('')).toBe('1\n2\n3\n');
    expect(chunks.length).toBeGreaterThanOrEqual(3);
  });

  it('listeners attached right after spawn() see all output, even of a process that is already gone', async () => {
    for (let i = 0; i < 20; i++) {
      const p = await vm.spawn(['echo', `early-${i}`], { maxBuffer: 0 });
      let seen = '';
      p.on('stdout', (d) => { seen += d.toString(); });
      const r = await p.wait();
      expect(seen).toBe(`early-${i}\n`);
      expect(r.exitCode).toBe(0);
    }
  });

  it('concurrent processes keep their outputs apart', async () => {
    const results = await Promise.all([1, 2, 3, 4].map((n) => vm.exec(`for i in 1 2 3 4 5; do echo ${n}; done`)));
    results.forEach((r, i) => expect(r.stdout).toBe(`${i + 1}\n`.repeat(5)));
  });
});

describe('the 128 MB overlay fills up', () => {
  it('writing 200 MB to / fails with ENOSPC, and the VM keeps working', async () => {
    const r = await vm.exec('dd if=/dev/zero of=/big bs=1M count=200');
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/No space left on device/);
    const usage = await vm.overlayUsage(3);
    expect(usage[0]?.path).toBe('/big');
    expect(usage[0]!.bytes).toBeGreaterThan(120 * 1024 * 1024);
    await vm.exec('rm /big');
    expect((await vm.exec('echo still alive')).stdout).toBe('still alive\n');
  });
});
