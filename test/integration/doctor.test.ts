/**
 * doctor's real gathering, through the built CLI: on this machine (which runs the suite's VMs) it
 * passes; with no QEMU on PATH it fails with the install command. Every verdict and fix from given
 * facts: test/unit/diagnostics/doctor.test.ts.
 */
import { mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';

const cli = resolve('dist/cli/main.js');
let fakeBin: string;

beforeAll(async () => {
  // A PATH with node and the squashfs tools but no QEMU.
  fakeBin = await mkdtemp(join(tmpdir(), 'gvmi-fakepath-'));
  for (const tool of [process.execPath, '/usr/bin/mksquashfs', '/usr/bin/unsquashfs']) {
    await symlink(tool, join(fakeBin, tool.split('/').pop()!));
  }
});

function doctor(env: Record<string, string>) {
  return execa(process.execPath, [cli, 'doctor'], { reject: false, env, extendEnv: true });
}

describe('gvmi-test doctor', () => {
  it('passes on a machine that can run images', async () => {
    const r = await doctor({});
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/ok {4}QEMU: .*QEMU emulator version/);
    expect(r.stdout).toMatch(/ok {4}accelerator: (TCG|KVM) \(/);
    expect(r.stdout).toMatch(/ok {4}guest runtime: kernel [0-9a-f]{16}/);
  });

  it('without QEMU on PATH: FAIL with the install command, exit 69', async () => {
    const r = await doctor({ PATH: fakeBin });
    expect(r.exitCode).toBe(69);
    expect(r.stdout).toMatch(/FAIL {2}QEMU: qemu-system-x86_64 not found/);
    expect(r.stdout).toContain('fix: make deps');
    expect(r.stdout).toContain('apt-get install -y qemu-system-x86');
  });
});
