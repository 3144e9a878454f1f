/**
 * doctor's verdicts from facts written by hand (checkDoctorFacts is pure): which check fails,
 * whether `run` can work, and the fix each failure names, in a checkout and in a package. The
 * real gathering runs in test/integration/doctor.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { checkDoctorFacts, type DoctorCheck, type DoctorFacts } from '../../../src/diagnostics/doctor.js';

/** A machine that can run images: QEMU, a KVM-less host (TCG), a built runtime, the tools. */
function healthy(): DoctorFacts {
  return {
    checkout: true,
    qemu: { path: '/usr/bin/qemu-system-x86_64', version: 'QEMU emulator version 8.2.2', sandbox: true },
    accelerator: { requested: undefined, host: { modules: ['kvm'], cpuFlags: ['sse2'], devKvm: 'missing' } },
    runtime: { kernel: '/r/vmlinux', initramfs: '/r/initramfs.cpio', kernelHash: '0123456789abcdef', initHash: 'fedcba9876543210', runtimeHash: 'x', source: 'checkout' },
    squashfs: { mksquashfs: 'mksquashfs version 4.6.1', unsquashfs: 'unsquashfs version 4.6.1' },
    qemuUser: undefined,
    cacheDir: '/home/u/.cache/gvmi-test',
    snapshots: { on: true, dir: '/home/u/.cache/gvmi-test/snapshots', savedBytes: [3 * 1048576, 5 * 1048576], budgetBytes: 2048 * 1048576 },
  };
}

function check(report: { checks: DoctorCheck[] }, name: string): DoctorCheck {
  const found = report.checks.find((c) => c.name === name);
  if (!found) throw new Error(`no check ${name} in ${report.checks.map((c) => c.name).join(', ')}`);
  return found;
}

describe('checkDoctorFacts', () => {
  it('a machine that can run images: every required check ok, TCG noted as optional to fix', () => {
    const report = checkDoctorFacts(healthy());
    expect(report.canRun).toBe(true);
    expect(report.checks.map((c) => c.name)).toEqual(['QEMU', 'accelerator', 'guest runtime', 'squashfs-tools', 'QEMU sandbox', 'QEMU user', 'cache', 'snapshots']);
    expect(check(report, 'QEMU').detail).toBe('/usr/bin/qemu-system-x86_64: QEMU emulator version 8.2.2');
    expect(check(report, 'accelerator')).toMatchObject({ ok: true, detail: 'TCG (/dev/kvm does not exist)' });
    expect(check(report, 'accelerator').fix).toMatch(/^optional: TCG works/);
    expect(check(report, 'guest runtime').detail).toBe("kernel 0123456789abcdef (/r/vmlinux), init fedcba9876543210 (/r/initramfs.cpio), this checkout's build");
    expect(check(report, 'snapshots').detail).toBe('on: 2 saved, 8 MiB in /home/u/.cache/gvmi-test/snapshots (budget 2048 MiB)');
  });

  it('no QEMU: a required FAIL with the install command of a checkout, or of a package; no sandbox check', () => {
    const facts = { ...healthy(), qemu: { error: 'qemu-system-x86_64 not found on PATH', hint: 'install it: …' } };
    const report = checkDoctorFacts(facts);
    expect(report.canRun).toBe(false);
    expect(check(report, 'QEMU')).toEqual({ name: 'QEMU', ok: false, required: true, detail: 'qemu-system-x86_64 not found on PATH', fix: 'make deps   (or: sudo apt-get install -y qemu-system-x86 squashfs-tools)' });
    expect(report.checks.some((c) => c.name === 'QEMU sandbox')).toBe(false);
    expect(check(checkDoctorFacts({ ...facts, checkout: false }), 'QEMU').fix).toMatch(/^npx gvmi-test setup /);
  });

  it('KVM forced where it cannot work: FAIL naming the reason and the accelerator that works', () => {
    const report = checkDoctorFacts({ ...healthy(), accelerator: { requested: 'kvm', host: { modules: [], cpuFlags: [], devKvm: 'missing' } } });
    expect(report.canRun).toBe(false);
    expect(check(report, 'accelerator')).toMatchObject({ ok: false, required: true, detail: 'KVM was requested but /dev/kvm does not exist', fix: 'use --accel tcg or auto' });
  });

  it('GVMI_TEST_ACCEL set to nonsense: FAIL, fixed by unsetting it', () => {
    const report = checkDoctorFacts({ ...healthy(), accelerator: { requested: 'fast', host: healthy().accelerator.host } });
    expect(check(report, 'accelerator')).toMatchObject({ ok: false, fix: 'unset GVMI_TEST_ACCEL or set it to auto' });
    expect(check(report, 'accelerator').detail).toMatch(/accelerator "fast": choose auto, kvm or tcg/);
  });

  it('hardware KVM usable: no fix suggested', () => {
    const host = { modules: ['kvm', 'kvm_intel'], cpuFlags: ['vmx'], devKvm: 'read-write' as const };
    const accel = check(checkDoctorFacts({ ...healthy(), accelerator: { requested: undefined, host } }), 'accelerator');
    expect(accel).toEqual({ name: 'accelerator', ok: true, required: true, detail: 'KVM (hardware virtualisation available)' });
  });

  it('no guest runtime: the lookup\'s own hint, else the restore command of a checkout or a package', () => {
    const withHint = checkDoctorFacts({ ...healthy(), runtime: { error: 'GVMI_TEST_KERNEL: no such file', hint: 'set both …' } });
    expect(withHint.canRun).toBe(false);
    expect(check(withHint, 'guest runtime')).toMatchObject({ ok: false, required: true, fix: 'set both …' });
    const bare = { ...healthy(), runtime: { error: 'the guest runtime is not built' } };
    expect(check(checkDoctorFacts(bare), 'guest runtime').fix).toBe('make runtime   (in the gvmi-test checkout)');
    expect(check(checkDoctorFacts({ ...bare, checkout: false }), 'guest runtime').fix).toMatch(/^npm install gvmi-test /);
  });

  it('no squashfs-tools: a warning (build and inspect need them, run does not)', () => {
    const report = checkDoctorFacts({ ...healthy(), squashfs: { mksquashfs: 'mksquashfs version 4.6.1', unsquashfs: undefined } });
    expect(report.canRun).toBe(true);
    expect(check(report, 'squashfs-tools')).toMatchObject({ ok: false, required: false, fix: 'make deps   (or: sudo apt-get install -y squashfs-tools)' });
  });

  it('a QEMU user that does not exist: a required FAIL; one that does is named', () => {
    const missing = checkDoctorFacts({ ...healthy(), qemuUser: { error: 'GVMI_TEST_QEMU_USER=nobody2: no such user' } });
    expect(missing.canRun).toBe(false);
    expect(check(missing, 'QEMU user')).toMatchObject({ ok: false, required: true, fix: 'set GVMI_TEST_QEMU_USER to an existing unprivileged user' });
    const dropped = checkDoctorFacts({ ...healthy(), qemuUser: { name: 'gvmi', uid: 990, gid: 990 } });
    expect(check(dropped, 'QEMU user').detail).toBe("QEMU drops to gvmi (uid 990), as a provider's QEMU is unprivileged");
  });

  it('an unsafe snapshot directory: a required FAIL with its hint; snapshots off: said so', () => {
    const unsafe = checkDoctorFacts({ ...healthy(), snapshots: { ...healthy().snapshots, unsafe: { error: '/s is writable by others', hint: 'chmod 700 /s' } } });
    expect(unsafe.canRun).toBe(false);
    expect(check(unsafe, 'snapshots')).toEqual({ name: 'snapshots', ok: false, required: true, detail: '/s is writable by others', fix: 'chmod 700 /s' });
    const off = checkDoctorFacts({ ...healthy(), snapshots: { ...healthy().snapshots, on: false, savedBytes: [] } });
    expect(check(off, 'snapshots').detail).toMatch(/^off \(GVMI_TEST_SNAPSHOT\): 0 saved, 0 MiB/);
  });
});
