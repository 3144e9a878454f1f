/**
 * A requestor's deploy volumes (issue #18 item 4; reference §9): under the 0.5 profile `ram`,
 * `storage` and extra `host` volumes behave as ya-runtime-vm 0.5.2 makes them, in a booted VM;
 * under 0.4 each is refused with the reason before anything boots.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVm } from '../../src/vm/start-vm.js';
import type { StartedVm } from '../../src/vm/started-vm.js';
import { GvmiTestError } from '../../src/errors.js';
import { runCli } from '../../src/cli/program.js';
import { capture } from '../helpers/capture-io.js';

const MiB = 1024 * 1024;

/** Finds the ext2 directory block of DIR on its disk and zeroes it: the next read of DIR is a filesystem error. */
const CORRUPT_DIRECTORY = `
set -e
dir=$1; mnt=$2
sync # the inode and its directory block on the disk, where this script reads them
dev=$(awk -v m="$mnt" '$2==m{print $1}' /proc/mounts)
n() { od -An -t"u$2" -j "$1" -N "$2" "$dev" | tr -d ' '; }
ino=$(ls -id "$dir" | awk '{print $1}')
bs=$((1024 << $(n $((1024+24)) 4)))
ipg=$(n $((1024+40)) 4); isz=$(n $((1024+88)) 2); first=$(n $((1024+20)) 4)
table=$(n $(( (first+1)*bs + (ino-1)/ipg*32 + 8 )) 4)
block=$(n $(( table*bs + (ino-1)%ipg*isz + 40 )) 4)
dd if=/dev/zero of="$dev" bs=$bs seek=$block count=1 conv=notrunc 2>/dev/null
sync; echo 3 > /proc/sys/vm/drop_caches
`;

function mountLine(mounts: string, path: string): string | undefined {
  return mounts.split('\n').find((l) => l.split(' ')[1] === path);
}

describe('deploy volumes under the 0.5 profile', () => {
  let vm: StartedVm;
  let cacheDir: string;

  beforeAll(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'gvmi-deploy-host-'));
    vm = await startVm({
      image: inject('tinyImage'),
      runtimeVersion: '0.5',
      deployVolumes: {
        '/': { kind: 'ram', sizeMiB: 48 },
        '/data': { kind: 'ram', sizeMiB: 8 },
        '/store': { kind: 'storage', sizeMiB: 16, errors: 'remount-ro' },
        '/scratch': { kind: 'storage', sizeMiB: 16 },
        '/cache': { kind: 'host' },
        // gvmi-test's microvm has 8 virtio slots: image disk, agent, rng, VPN NIC, 2 x 9p, 2 disks
        '/golem/output': { kind: 'ram', sizeMiB: 4 },
      },
    });
  });
  afterAll(async () => {
    await vm?.stop();
    await rm(cacheDir, { recursive: true, force: true });
  });

  it('mounts each kind as upstream 0.5.2 does: ext2 nodev errors= disks, then tmpfs mode=0700 size= nodev, before /proc', async () => {
    const mounts = (await vm.exec('cat /proc/mounts')).stdout;
    expect(mountLine(mounts, '/data')).toBe('tmpfs /data tmpfs rw,nodev,relatime,size=8192k,mode=700 0 0');
    expect(mountLine(mounts, '/store')).toMatch(/^\/dev\/vd[b-z] \/store ext2 rw,nodev,relatime,errors=remount-ro 0 0$/);
    // errors= defaults to continue, and ext2's driver always names continue in /proc/mounts
    expect(mountLine(mounts, '/scratch')).toMatch(/^\/dev\/vd[b-z] \/scratch ext2 rw,nodev,relatime,errors=continue 0 0$/);
    // a ram volume at an image VOLUME's path replaces its 9p export
    expect(mountLine(mounts, '/golem/output')).toMatch(/^tmpfs \/golem\/output tmpfs /);
    expect(mountLine(mounts, '/cache')).toMatch(/^mnt\d+ \/cache 9p /);
    const order = mounts.split('\n').map((l) => l.split(' ')[1]);
    expect(order.indexOf('/store')).toBeLessThan(order.indexOf('/data'));
    expect(order.indexOf('/data')).toBeLessThan(order.indexOf('/proc'));
    expect(vm.volumes.map((v) => v.guestPath)).toEqual(['/cache', '/golem/input']);
  });

  it('a ram volume at / is the space outside volumes: the overlay\'s upper is that tmpfs', async () => {
    const stats = await vm.stats();
    expect(stats.overlay.totalBytes).toBe(48 * MiB);
    const df = await vm.exec('df -k / | tail -1');
    expect(df.stdout.split(/\s+/)[1]).toBe(String(48 * 1024));
  });

  it('a ram volume fills at its size: ENOSPC, and the finding names the ram volume', async () => {
    const r = await vm.exec('dd if=/dev/zero of=/data/big bs=1M count=20');
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/No space left on device/);
    const findings = await vm.diagnose(r);
    const full = findings.find((f) => f.code === 'deploy-volume-full');
    expect(full?.paths).toEqual(['/data']);
    expect(full?.message).toMatch(/the ram volume \/data \(a tmpfs of 8\.0 MiB/);
    expect((await vm.exec('rm /data/big')).exitCode).toBe(0);
    expect(full?.fix).toMatch(/--ram-volume \/data:SIZE/);
    // the overlay has room: it is not blamed
    expect(findings.map((f) => f.code)).not.toContain('overlay-full');
  });

  it('a storage volume fills up: ENOSPC, and the finding names the storage volume', async () => {
    const r = await vm.exec('dd if=/dev/zero of=/scratch/big bs=1M count=40');
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/No space left on device/);
    const full = (await vm.diagnose(r)).find((f) => f.code === 'deploy-volume-full');
    expect((await vm.exec('rm /scratch/big')).exitCode).toBe(0);
    expect(full?.paths).toEqual(['/scratch']);
    expect(full?.message).toMatch(/the storage volume \/scratch \(an ext2 disk of/);
    expect(full?.fix).toMatch(/--storage-volume \/scratch:SIZE/);
  });

  it('filling / (the ram volume there): overlay-full says so', async () => {
    const r = await vm.exec('dd if=/dev/zero of=/big bs=1M count=60');
    expect(r.stderr).toMatch(/No space left on device/);
    const full = (await vm.diagnose(r)).find((f) => f.code === 'overlay-full');
    expect((await vm.exec('rm /big')).exitCode).toBe(0);
    expect(full?.message).toMatch(/\/ is an overlay on the ram volume the deploy put at \/ \(48 MiB/);
  });

  it('a host volume at a path the image did not declare is a 9p directory, reachable by transfers', async () => {
    await writeFile(join(cacheDir, 'in.txt'), 'from the host\n');
    await vm.upload(join(cacheDir, 'in.txt'), '/cache/in.txt');
    const r = await vm.exec('cat /cache/in.txt; echo back > /cache/out.txt');
    expect(r.stdout).toBe('from the host\n');
    await vm.download('/cache/out.txt', join(cacheDir, 'out.txt'));
    expect(await readFile(join(cacheDir, 'out.txt'), 'utf8')).toBe('back\n');
  });

  it('errors=continue: a filesystem error leaves the volume writable', async () => {
    await writeFile(join(cacheDir, 'corrupt.sh'), CORRUPT_DIRECTORY);
    await vm.upload(join(cacheDir, 'corrupt.sh'), '/cache/corrupt.sh');
    const r = await vm.exec('mkdir /scratch/d && touch /scratch/d/a && /bin/sh /cache/corrupt.sh /scratch/d /scratch && ls /scratch/d; touch /scratch/after && echo written');
    expect(r.stdout).toContain('written');
    expect(mountLine((await vm.exec('cat /proc/mounts')).stdout, '/scratch')).toMatch(/ ext2 rw,/);
  });

  it('errors=remount-ro: the same error makes the volume read-only (ro in /proc/mounts, EROFS), and the finding says why', async () => {
    const r = await vm.exec('mkdir /store/d && touch /store/d/a && /bin/sh /cache/corrupt.sh /store/d /store && ls /store/d; touch /store/after');
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(mountLine((await vm.exec('cat /proc/mounts')).stdout, '/store')).toMatch(/ ext2 ro,/);
    const readOnly = (await vm.diagnose(r)).find((f) => f.code === 'deploy-volume-read-only');
    expect(readOnly?.paths).toEqual(['/store']);
    expect(readOnly?.message).toMatch(/errors=remount-ro remounted it read-only/);
  });
});

describe('errors=panic', () => {
  it('a filesystem error on the storage volume panics the guest kernel: the VM is gone, and the error says so', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gvmi-deploy-panic-'));
    try {
      await writeFile(join(dir, 'corrupt.sh'), CORRUPT_DIRECTORY);
      const vm = await startVm({ image: inject('tinyImage'), runtimeVersion: '0.5', deployVolumes: { '/store': { kind: 'storage', sizeMiB: 8, errors: 'panic' } } });
      try {
        await vm.upload(join(dir, 'corrupt.sh'), '/golem/input/corrupt.sh');
        expect(mountLine((await vm.exec('cat /proc/mounts')).stdout, '/store')).toMatch(/ ext2 rw,nodev,relatime,errors=panic 0 0$/);
        const error = await vm.exec('mkdir /store/d && touch /store/d/a && /bin/sh /golem/input/corrupt.sh /store/d /store && ls /store/d').catch((e: unknown) => e);
        expect((error as GvmiTestError).code).toBe('vm.crashed');
        expect((error as GvmiTestError).message).toMatch(/Kernel panic/i);
        expect(String((error as GvmiTestError).details?.['consoleTail'])).toMatch(/EXT2-fs .*error/);
      } finally {
        await vm.stop().catch(() => {});
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a deploy volume the image has no room for', () => {
  it('a ram volume whose path runs through a symbolic link stops the boot, explained', async () => {
    // /etc/mtab is a symbolic link in the image: the init makes no directory through it
    const error = await startVm({ image: inject('tinyImage'), runtimeVersion: '0.5', snapshot: false, deployVolumes: { '/etc/mtab/x': { kind: 'ram', sizeMiB: 1 } } }).catch((e: unknown) => e);
    expect((error as GvmiTestError).code).toBe('vm.boot-failed');
    expect((error as GvmiTestError).hint).toMatch(/a component of its path is a symbolic link or a file there/);
  });
});

describe('deploy volumes under the 0.4 profile: refused with the reason', () => {
  it.each([
    ['host', { '/cache': { kind: 'host' as const } }],
    ['ram', { '/data': { kind: 'ram' as const, sizeMiB: 8 } }],
    ['ram at /', { '/': { kind: 'ram' as const, sizeMiB: 64 } }],
    ['storage', { '/store': { kind: 'storage' as const, sizeMiB: 8, errors: 'remount-ro' as const } }],
  ])('%s', async (_kind, deployVolumes) => {
    const error = await startVm({ image: inject('tinyImage'), runtimeVersion: '0.4', deployVolumes }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GvmiTestError);
    expect((error as GvmiTestError).code).toBe('deploy.unsupported-by-runtime');
    expect((error as GvmiTestError).message).toMatch(/ya-runtime-vm 0\.4 has no deploy volumes/);
  });

  it('a binding at a path the image did not declare', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gvmi-deploy-bind-'));
    try {
      const error = await startVm({ image: inject('tinyImage'), runtimeVersion: '0.4', volumes: { '/data': dir } }).catch((e: unknown) => e);
      expect((error as GvmiTestError).code).toBe('deploy.unsupported-by-runtime');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the CLI\'s deploy volume options', () => {
  it('--ram-volume and --storage-volume under 0.5; refused under 0.4 with exit 2 and the reason', async () => {
    const ok = capture();
    const status = await runCli(['run', inject('tinyImage'), '--runtime-version', '0.5', '--ram-volume', '/data:8', '--storage-volume', '/store:16:remount-ro',
      '--', '/bin/sh', '-c', 'grep -E " /(data|store) " /proc/mounts'], ok.io);
    expect(status).toBe(0);
    expect(ok.out()).toMatch(/^tmpfs \/data tmpfs rw,nodev,relatime,size=8192k,mode=700 0 0$/m);
    expect(ok.out()).toMatch(/ \/store ext2 rw,nodev,relatime,errors=remount-ro 0 0$/m);
    const refused = capture();
    expect(await runCli(['run', inject('tinyImage'), '--runtime-version', '0.4', '--ram-volume', '/data:8', '--', '/bin/true'], refused.io)).toBe(2);
    expect(refused.err()).toMatch(/ya-runtime-vm 0\.4 has no deploy volumes.*\[deploy\.unsupported-by-runtime\]/);
    const bad = capture();
    expect(await runCli(['run', inject('tinyImage'), '--runtime-version', '0.5', '--storage-volume', '/s:8:sometimes', '--', '/bin/true'], bad.io)).toBe(2);
    expect(bad.err()).toMatch(/\[(usage|deploy\.bad-volume)\]/);
  });
});
