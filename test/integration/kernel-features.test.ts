/**
 * The guest kernel has the features runtime/README.md lists (the provider kernel's set), seen
 * from inside a VM.
 */
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, inject, it } from 'vitest';
import { describeWithVm } from '../../src/vitest/index.js';

/** A 96-byte i386 ELF executable: exit(42) through int 0x80. */
function i386Exit42(): Buffer {
  const b = Buffer.alloc(96);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]).copy(b, 0);
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(3, 18); // EM_386
  b.writeUInt32LE(1, 20);
  b.writeUInt32LE(0x08048000 + 84, 24); // entry
  b.writeUInt32LE(52, 28); // program headers
  b.writeUInt16LE(52, 40);
  b.writeUInt16LE(32, 42);
  b.writeUInt16LE(1, 44);
  b.writeUInt32LE(1, 52); // PT_LOAD
  b.writeUInt32LE(0, 56);
  b.writeUInt32LE(0x08048000, 60);
  b.writeUInt32LE(0x08048000, 64);
  b.writeUInt32LE(96, 68);
  b.writeUInt32LE(96, 72);
  b.writeUInt32LE(5, 76); // R+X
  b.writeUInt32LE(0x1000, 80);
  Buffer.from([0xb8, 1, 0, 0, 0, 0xbb, 42, 0, 0, 0, 0xcd, 0x80]).copy(b, 84);
  return b;
}

describeWithVm('guest kernel features', { image: inject('tinyImage'), testTimeoutMs: 12_000 }, (vm) => {
  it('file systems: squashfs, overlay, tmpfs, 9p, ext4, fuse, devpts', async () => {
    const fs = (await vm().exec('cat /proc/filesystems')).stdout;
    for (const name of ['squashfs', 'overlay', 'tmpfs', '9p', 'ext4', 'fuse', 'devpts', 'devtmpfs']) expect(fs).toMatch(new RegExp(`\\b${name}\\n`));
  });

  it('namespaces, cgroups, keyrings, binfmt_misc, IPv6', async () => {
    expect((await vm().exec('ls /proc/self/ns')).stdout.split('\n')).toEqual(expect.arrayContaining(['ipc', 'net', 'pid', 'user', 'uts']));
    expect((await vm().exec('cat /proc/cgroups')).stdout).toMatch(/memory/);
    expect((await vm().exec('test -d /proc/sys/kernel/keys && echo keys')).stdout).toBe('keys\n');
    expect((await vm().exec('grep -c binfmt_misc /proc/filesystems')).stdout).toBe('1\n');
    expect((await vm().exec('cat /proc/net/if_inet6')).stdout).toMatch(/ lo\n/);
  });

  it('32-bit x86 programs run (IA32 emulation, as on a provider)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gvmi-i386-'));
    await writeFile(join(dir, 'exit42'), i386Exit42());
    await chmod(join(dir, 'exit42'), 0o755);
    await vm().upload(join(dir, 'exit42'), '/golem/input/exit42');
    expect((await vm().exec(['/golem/input/exit42'])).exitCode).toBe(42);
  });
});
