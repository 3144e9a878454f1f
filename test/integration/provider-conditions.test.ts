/**
 * Provider conditions observed from inside a real VM (real QEMU, kernel, init, 9p volumes), for
 * both provider runtimes gvmi-test reproduces: ya-runtime-vm 0.4.2 (the default) and 0.5.2.
 * Paths like init.c:N are upstream's runtime/init-container/src/init.c at v0.4.2 / v0.5.2.
 */
import { chmod, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVm, type StartedVm } from '../../src/index.js';
import { TINY_IMAGE_SETTINGS } from '../helpers/busybox-rootfs.js';
import { copyOfTinyImage } from '../helpers/cached-image.js';
import { vmInternalsForTests } from '../../src/vm/started-vm.js';
import { failure } from '../helpers/failure.js';
import { cachedRawGvmi, minimalRootfs, rawGvmi } from '../helpers/raw-gvmi.js';

let vm: StartedVm; // runtime 0.4 (the default)
let vm05: StartedVm; // runtime 0.5
let inputDir: string;
let scratch: string;

beforeAll(async () => {
  inputDir = await mkdtemp(join(tmpdir(), 'gvmi-input-'));
  scratch = await mkdtemp(join(tmpdir(), 'gvmi-conditions-'));
  await writeFile(join(inputDir, 'from-host.txt'), 'sent by the requestor\n');
  vm = await startVm({ image: inject('tinyImage'), volumes: { '/golem/input': inputDir } });
  vm05 = await startVm({ image: inject('tinyImage'), runtimeVersion: '0.5' });
});

afterAll(async () => {
  await vm?.stop();
  await vm05?.stop();
  await rm(scratch, { recursive: true, force: true });
});

const profiles = () => [['0.4', vm], ['0.5', vm05]] as const;

/** stdout of a command run through the image's busybox by absolute path (no PATH needed). */
async function run(on: StartedVm, ...argv: string[]): Promise<string> {
  const r = await on.exec(['/bin/busybox', ...argv]);
  expect(r.exitCode, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** Upstream's six /etc/hosts lines (init.c setup_network: v0.4.2:498-505, v0.5.2:570-577). */
const UPSTREAM_HOSTS = '127.0.0.1\tlocalhost\n::1\tip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n'
  + 'ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n';

describe('a provider VM seen from inside', () => {
  it('/ is an overlay whose writable layer is a 128 MB tmpfs (0.4)', async () => {
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

  it("startVm's env is added to the image Env of every process (0.4 applies it)", async () => {
    const other = await startVm({ image: inject('tinyImage'), env: { EXTRA: 'from-startVm', GREETING: 'overridden' } });
    try {
      expect((await other.exec('echo "$EXTRA $GREETING"')).stdout).toBe('from-startVm overridden\n');
    } finally {
      await other.stop();
    }
  });

  it('per-run env and cwd override the image', async () => {
    const r = await vm.exec('pwd; echo "$GREETING"', { env: { GREETING: 'overridden' }, cwd: '/tmp' });
    expect(r.stdout).toBe('/tmp\noverridden\n');
  });

  it('/etc/resolv.conf is the provider\'s', async () => {
    expect((await vm.exec('cat /etc/resolv.conf')).stdout).toBe('nameserver 1.1.1.1\nnameserver 8.8.8.8\n');
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

  // Push output goes from the process's pipe to the port with splice (runtime/init/splice_out.c):
  // a header announcing what the pipe holds, then exactly those bytes, one payload in flight while
  // other streams' chunks and messages queue behind it, the last bytes drained by reading when a
  // writer exits. Numbered lines show any byte lost, repeated or out of place (zeros would not).
  // A half-sent payload (the port full) is rare here; make test-c drives that path on host pipes.
  it('push output of concurrent streams arrives byte-exact and in order (spliced payloads)', async () => {
    const pattern = (tag: string, lines: number) =>
      Array.from({ length: lines }, (_, i) => `${tag}${String(i).padStart(8, '0')}\n`).join('');
    const files = { a: pattern('out-', 200_000), b: pattern('err-', 150_000), c: pattern('other-', 120_000) };
    for (const [name, text] of Object.entries(files)) await writeFile(join(inputDir, `${name}.txt`), text);
    try {
      const maxBuffer = 16 << 20;
      const [both, other] = await Promise.all([
        vm.exec('cat /golem/input/a.txt & cat /golem/input/b.txt >&2; wait', { maxBuffer }),
        vm.exec(['/bin/cat', '/golem/input/c.txt'], { maxBuffer }),
      ]);
      expect(both.exitCode).toBe(0);
      expect(both.stdout.length).toBe(files.a.length);
      expect(both.stdout === files.a).toBe(true);
      expect(both.stderr.length).toBe(files.b.length);
      expect(both.stderr === files.b).toBe(true);
      expect(other.stdout.length).toBe(files.c.length);
      expect(other.stdout === files.c).toBe(true);
    } finally {
      for (const name of Object.keys(files)) await rm(join(inputDir, `${name}.txt`), { force: true });
    }
  });

  it('stdin bytes reach the process', async () => {
    const r = await vm.exec('wc -c; cat', { stdin: 'twelve bytes' });
    expect(r.stdout).toBe('12\n');
  });

  it('a program a provider cannot start dies with 9 (all a requestor sees); execFailure and the finding say why', async () => {
    const missing = await vm.exec(['/no/such-program']);
    expect(missing.exitCode).toBe(9);
    expect(missing.execFailure).toMatchObject({ step: 'execve', errnoName: 'ENOENT' });
    expect((await vm.diagnose(missing))[0]).toMatchObject({ code: 'exec-failed' });
    // No PATH search: a bare name fails although PATH=/bin holds it.
    expect((await vm.exec(['true'])).execFailure).toMatchObject({ step: 'execve', errnoName: 'ENOENT' });
    const noCwd = await vm.exec(['/bin/true'], { cwd: '/no/such/dir' });
    expect(noCwd.exitCode).toBe(9);
    expect(noCwd.execFailure).toMatchObject({ step: 'chdir', errnoName: 'ENOENT', cwd: '/no/such/dir' });
    expect((await vm.diagnose(noCwd))[0]!.message).toContain('the working directory /no/such/dir does not exist');
  });

  it('a script whose #! interpreter is missing: the finding names the interpreter', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gvmi-shebang-'));
    await writeFile(join(dir, 'job.py'), '#!/usr/bin/python3\nprint(1)\n', { mode: 0o755 });
    await vm.upload(join(dir, 'job.py'), '/golem/input/job.py');
    const r = await vm.exec(['/golem/input/job.py']);
    expect(r.exitCode).toBe(9);
    expect((await vm.diagnose(r))[0]!.message).toContain('the interpreter its #! line names (/usr/bin/python3) is not in the image');
    await rm(dir, { recursive: true, force: true });
  });

  it('the image\'s numeric USER uid:gid is every process\'s, as on a provider (other forms run as root)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gvmi-user-'));
    try {
      for (const [user, expected] of [['1234:5678', '1234\n5678\n'], ['1234', '0\n0\n'], ['app:app', '0\n0\n']] as const) {
        const image = join(dir, `${user.replace(':', '-')}.gvmi`);
        await copyOfTinyImage(image, inject('tinyRootfs'), { ...TINY_IMAGE_SETTINGS, user }); // gvmi-test build's, kept between runs
        const other = await startVm({ image });
        try {
          expect((await other.exec('id -u; id -g')).stdout, `USER ${user}`).toBe(expected);
        } finally {
          await other.stop();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a timeout kills the command and every process it started (the SIGNAL extension), and the VM stays usable', async () => {
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
      const p = await vm.spawn(['/bin/echo', `early-${i}`], { maxBuffer: 0 });
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

describe('conditions as upstream, per runtime (ya-runtime-vm 0.4.2 / 0.5.2)', () => {
  /**
   * The mount calls of upstream's init (init.c v0.4.2:2187-2242, v0.5.2:2736-2882) as this
   * kernel prints them: the same calls made by upstream's own init under this kernel give these
   * lines. Order included. nr_inodes of /dev depends on the guest's RAM.
   */
  const expectedMounts = (profile: '0.4' | '0.5'): (string | RegExp)[] => {
    const lower = profile === '0.4' ? '/mnt/image' : '/mnt/image-0';
    // 9p: 0.4.2 asks no msize (init.c:1399), 0.5.2 asks 104857600 (init.c:1586), which virtio
    // caps at 512000; the kernel's default (here 128 KiB) is not shown.
    const msize = profile === '0.4' ? '' : 'msize=512000,';
    return [
      `overlay / overlay rw,nodev,relatime,lowerdir=${lower},upperdir=/mnt/overlay/upper,workdir=/mnt/overlay/work 0 0`,
      'proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0',
      'sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0',
      /^devtmpfs \/dev devtmpfs rw,nosuid,relatime,size=2048k,nr_inodes=\d+,mode=755 0 0$/,
      'tmpfs /tmp tmpfs rw,nosuid,relatime,mode=777 0 0',
      'devpts /dev/pts devpts rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=000 0 0',
      'tmpfs /dev/shm tmpfs rw,nosuid,nodev,noexec,relatime 0 0',
      `mnt0 /golem/input 9p rw,sync,dirsync,relatime,access=client,${msize}trans=virtio 0 0`,
      `mnt1 /golem/output 9p rw,sync,dirsync,relatime,access=client,${msize}trans=virtio 0 0`,
    ];
  };

  it.each(['0.4', '0.5'] as const)('%s: /proc/mounts is line for line a provider\'s, and nothing else is mounted', async (profile) => {
    const on = profile === '0.4' ? vm : vm05;
    const lines = (await run(on, 'cat', '/proc/mounts')).trimEnd().split('\n');
    expect(lines).toEqual(expectedMounts(profile).map((l) => (typeof l === 'string' ? l : expect.stringMatching(l))));
  });

  it('0.5: the writable layer is sized as upstream\'s root tmpfs, half of RAM (`df /`, STATS; 247 MiB of 512)', async () => {
    const memTotalKb = Number(/MemTotal:\s+(\d+) kB/.exec(await run(vm05, 'cat', '/proc/meminfo'))![1]);
    // tmpfs's default size: half of the RAM pages, in KiB
    const halfKb = Math.floor(memTotalKb / 4 / 2) * 4;
    const df = (await run(vm05, 'df', '-k', '/')).trim().split('\n').pop()!.trim().split(/\s+/);
    expect(Number(df[1])).toBe(halfKb);
    expect((await vm05.stats()).overlay.totalBytes).toBe(halfKb * 1024);
    // 0.4 keeps its own 128 MiB tmpfs (the test above)
    expect((await vm.stats()).overlay.totalBytes).toBe(128 * 1024 * 1024);
  });

  it.each(['0.4', '0.5'] as const)('%s: umask 022; / has the image root\'s mode (0755 here)', async (profile) => {
    const on = profile === '0.4' ? vm : vm05;
    expect(await run(on, 'sh', '-c', 'umask')).toBe('0022\n');
    expect(await run(on, 'stat', '-c', '%a %u:%g', '/')).toBe('755 0:0\n');
  });

  it('hostname: 0.4 sets none ("(none)"), 0.5 takes the kernel\'s hostname= (golem)', async () => {
    expect(await run(vm, 'hostname')).toBe('(none)\n');
    expect(await run(vm05, 'hostname')).toBe('golem\n');
  });

  it.each(['0.4', '0.5'] as const)('%s: /etc/hosts is the image\'s (empty, from Docker\'s init layer) with upstream\'s lines appended; resolv.conf rewritten in place', async (profile) => {
    const on = profile === '0.4' ? vm : vm05;
    expect(await run(on, 'cat', '/etc/hosts')).toBe(UPSTREAM_HOSTS);
    expect(await run(on, 'cat', '/etc/resolv.conf')).toBe('nameserver 1.1.1.1\nnameserver 8.8.8.8\n');
    // fopen("w") keeps the file: the init layer's 0755 empty file, now with upstream's text
    expect(await run(on, 'stat', '-c', '%a %F', '/etc/resolv.conf')).toBe('755 regular file\n');
  });

  it.each(['0.4', '0.5'] as const)('%s: lo is 127.0.0.1/24 (upstream\'s netmask; the kernel adds its /8 when lo comes up), net.core buffers 1 MiB / 2 MiB', async (profile) => {
    const on = profile === '0.4' ? vm : vm05;
    const inet = [...(await run(on, 'ip', '-4', '-o', 'addr', 'show')).matchAll(/^\d+: (\S+)\s+inet (\S+)/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(inet).toEqual(['lo 127.0.0.1/24', 'lo 127.0.0.1/8']);
    const sysctl = await run(on, 'sh', '-c', 'cd /proc/sys/net/core && for f in rmem_default rmem_max wmem_default wmem_max; do echo "$f=$(cat $f)"; done');
    expect(sysctl).toBe('rmem_default=1048576\nrmem_max=2097152\nwmem_default=1048576\nwmem_max=2097152\n');
  });

  it.each(['0.4', '0.5'] as const)('%s: /dev/fd -> /proc/self/fd; /var/tmp/guest_agent_private/fds made at boot, 0755 each', async (profile) => {
    const on = profile === '0.4' ? vm : vm05;
    expect(await run(on, 'readlink', '/dev/fd')).toBe('/proc/self/fd\n');
    expect(await run(on, 'stat', '-c', '%a %n', '/var', '/var/tmp', '/var/tmp/guest_agent_private', '/var/tmp/guest_agent_private/fds'))
      .toBe('755 /var\n755 /var/tmp\n755 /var/tmp/guest_agent_private\n755 /var/tmp/guest_agent_private/fds\n');
  });

  it('MOUNT_VOLUME checks the path as upstream\'s create_dir_path: EINVAL at an empty, . or .. component (what came before is made, 0755), ENOTDIR through a symlink', async () => {
    const client = vmInternalsForTests(vm).client;
    const errnoOf = (path: string): Promise<unknown> => client.mountVolume('mnt-none', path).then(() => 0, (e: { details?: { errno?: number } }) => e.details?.errno);
    expect(await errnoOf('relative/path')).toBe(22);
    expect(await errnoOf('/')).toBe(22);
    expect(await errnoOf('//made-never')).toBe(22);
    expect(await errnoOf('/made-a/../x')).toBe(22);
    expect(await errnoOf('/made-b/./x')).toBe(22);
    expect(await errnoOf('/made-c/')).toBe(22);
    // upstream checks each component as it reaches it: /made-a, /made-b, /made-c exist now
    expect(await run(vm, 'stat', '-c', '%a %n', '/made-a', '/made-b', '/made-c')).toBe('755 /made-a\n755 /made-b\n755 /made-c\n');
    expect((await vm.exec(['/bin/busybox', 'ls', '-d', '/made-never', '/x'])).exitCode).not.toBe(0);
    // each component is opened O_NOFOLLOW: /etc/mtab is a symlink (to /proc/mounts)
    expect(await errnoOf('/etc/mtab/x')).toBe(20);
    // a good path with an unknown tag: the directories are made, then mount says ENOENT
    expect(await errnoOf('/new/volume')).toBe(2);
    expect(await run(vm, 'stat', '-c', '%a %n', '/new', '/new/volume')).toBe('755 /new\n755 /new/volume\n');
  });
});

describe('an image as converted by other tools (no Docker init layer), as on a provider', () => {
  it.each(['0.4', '0.5'] as const)('%s: / keeps the image root\'s mode less umask 022; /etc/hosts keeps its lines; resolv.conf is written through its symlink', async (profile) => {
    const root = await minimalRootfs(join(scratch, `custom-${profile}`), ['proc', 'sys', 'etc', 'run/resolvconf', 'out']);
    await writeFile(join(root, 'etc/hosts'), '10.1.2.3\tbaked-in\n');
    await symlink('../run/resolvconf/resolv.conf', join(root, 'etc/resolv.conf'));
    await chmod(root, 0o770);
    const image = await cachedRawGvmi(root, join(scratch, `custom-${profile}.gvmi`), { volumes: ['/out'] });
    const custom = await startVm({ image, runtimeVersion: profile });
    try {
      expect(await run(custom, 'stat', '-c', '%a', '/')).toBe('750\n');
      expect(await run(custom, 'cat', '/etc/hosts')).toBe(`10.1.2.3\tbaked-in\n${UPSTREAM_HOSTS}`);
      expect(await run(custom, 'readlink', '/etc/resolv.conf')).toBe('../run/resolvconf/resolv.conf\n');
      expect(await run(custom, 'cat', '/run/resolvconf/resolv.conf')).toBe('nameserver 1.1.1.1\nnameserver 8.8.8.8\n');
    } finally {
      await custom.stop();
    }
  });

  it.each([
    ['/proc', ['sys', 'etc'], 'image-proc'],
    ['/sys', ['proc', 'etc'], 'image-sys'],
  ] as const)('without %s it does not boot (init.c:2855-2863): GVMI-INIT-FATAL with the fix', async (missing, dirs, step) => {
    const root = await minimalRootfs(join(scratch, `no${missing.replace('/', '-')}`), dirs);
    const image = await rawGvmi(root, join(scratch, `no${missing.replace('/', '-')}.gvmi`), { volumes: ['/out'] });
    const e = await failure(startVm({ image }));
    expect(e.code).toBe('vm.boot-failed');
    expect(e.details?.['initFailure']).toMatchObject({ step, errno: 2 });
    expect(String(e.details?.['consoleTail'])).toContain(`GVMI-INIT-FATAL ${step} 2`);
    expect(e.hint).toContain(`a provider's VM would stop here: the image has no ${missing} directory`);
    expect(e.hint).toContain('RUN mkdir -p /proc /sys');
  });

  it('with /var/tmp a symlink it does not boot: upstream makes /var/tmp/guest_agent_private/fds without following links', async () => {
    const root = await minimalRootfs(join(scratch, 'var-tmp-link'), ['proc', 'sys', 'etc', 'var']);
    await symlink('/tmp', join(root, 'var/tmp'));
    const image = await rawGvmi(root, join(scratch, 'var-tmp-link.gvmi'), { volumes: ['/out'] });
    const e = await failure(startVm({ image }));
    expect(e.code).toBe('vm.boot-failed');
    expect(e.details?.['initFailure']).toMatchObject({ step: 'agent-dirs', errno: 20 });
    expect(e.hint).toMatch(/symlink or not a directory/);
  });
});
