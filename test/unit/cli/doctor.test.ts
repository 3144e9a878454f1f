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

function doctor(env: Record<string, string>, json = false) {
  return execa(process.execPath, [cli, 'doctor', ...(json ? ['--json'] : [])], { reject: false, env, extendEnv: true });
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

  it('with KVM forced where it cannot work: FAIL naming the reason, exit 69', async () => {
    const r = await doctor({ GVMI_TEST_ACCEL: 'kvm', GVMI_TEST_KVM_DEVICE: '/nonexistent/kvm' }, true);
    expect(r.exitCode).toBe(69);
    const report = JSON.parse(r.stdout) as { canRun: boolean; checks: { name: string; ok: boolean; detail: string; fix?: string }[] };
    expect(report.canRun).toBe(false);
    const accel = report.checks.find((c) => c.name === 'accelerator')!;
    expect(accel.ok).toBe(false);
    expect(accel.detail).toMatch(/KVM was requested but .*does not exist/);
    expect(accel.fix).toMatch(/--accel tcg/);
  });
});
