/**
 * `gvmi-test doctor`: can this machine run images, and if not, the exact command that fixes it.
 */
import { cacheDir } from '../cache-dir.js';
import { execa } from 'execa';
import { GvmiTestError } from '../errors.js';
import { chooseAccelerator, parseAcceleratorChoice, readHostFacts } from '../qemu/accelerator.js';
import { resolveQemuUser } from '../qemu/qemu-user.js';
import { findQemu, findRuntime, qemuSupportsSandbox } from '../qemu/runtime-files.js';
import { installToolsCommand, isCheckout, restoreRuntimeCommand } from '../qemu/package-layout.js';
import { assertSnapshotDirTrusted, listSnapshots, snapshotBudgetBytes, snapshotDir } from '../snapshot/snapshot-store.js';
import { snapshotsWanted } from '../snapshot/snapshot-settings.js';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  /** Failing a `required` check means `run` cannot work. */
  required: boolean;
  detail: string;
  fix?: string;
}

export interface DoctorReport {
  checks: DoctorCheck[];
  canRun: boolean;
}

async function firstLine(cmd: string, args: string[]): Promise<string | undefined> {
  const r = await execa(cmd, args, { reject: false, timeout: 5000 });
  if (r.failed && r.exitCode === undefined) return undefined;
  return `${String(r.stdout)}\n${String(r.stderr)}`.split('\n').find((l) => l.trim())?.trim();
}

export async function runDoctor(): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];

  let qemu: string | undefined;
  try {
    qemu = await findQemu();
    const version = await firstLine(qemu, ['--version']);
    checks.push({ name: 'QEMU', ok: true, required: true, detail: `${qemu}: ${version ?? 'version unknown'}` });
  } catch (e) {
    checks.push({ name: 'QEMU', ok: false, required: true, detail: (e as Error).message, fix: installToolsCommand() });
  }

  try {
    const choice = parseAcceleratorChoice(process.env['GVMI_TEST_ACCEL']);
    const accel = chooseAccelerator(choice, await readHostFacts());
    checks.push({
      name: 'accelerator', ok: true, required: true, detail: accel.reason,
      ...(accel.accel === 'tcg' && choice === 'auto' ? { fix: 'optional: TCG works but is several times slower; with VT-x/AMD-V hardware load kvm_intel/kvm_amd and add yourself to the kvm group' } : {}),
    });
  } catch (e) {
    const hint = e instanceof GvmiTestError ? e.hint : undefined;
    checks.push({ name: 'accelerator', ok: false, required: true, detail: (e as Error).message, fix: hint ?? 'unset GVMI_TEST_ACCEL or set it to auto' });
  }

  try {
    const runtime = await findRuntime();
    const from = { override: 'your override', checkout: "this checkout's build", package: 'shipped in the package' }[runtime.source ?? 'checkout'];
    checks.push({ name: 'guest runtime', ok: true, required: true, detail: `kernel ${runtime.kernelHash} (${runtime.kernel}), init ${runtime.initHash} (${runtime.initramfs}), ${from}` });
  } catch (e) {
    const hint = e instanceof GvmiTestError ? e.hint : undefined;
    checks.push({ name: 'guest runtime', ok: false, required: true, detail: (e as Error).message, fix: hint ?? restoreRuntimeCommand() });
  }

  const mksquashfs = await firstLine('mksquashfs', ['-version']);
  const unsquashfs = await firstLine('unsquashfs', ['-version']);
  checks.push(mksquashfs && unsquashfs
    ? { name: 'squashfs-tools', ok: true, required: false, detail: mksquashfs }
    : { name: 'squashfs-tools', ok: false, required: false, detail: 'mksquashfs/unsquashfs not found: build and inspect need them', fix: isCheckout() ? 'make deps   (or: sudo apt-get install -y squashfs-tools)' : 'npx gvmi-test setup   (or: sudo apt-get install -y squashfs-tools)' });

  if (qemu) {
    const sandbox = await qemuSupportsSandbox(qemu);
    checks.push({ name: 'QEMU sandbox', ok: true, required: false, detail: sandbox ? 'seccomp sandbox (-sandbox on) is used' : 'this QEMU has no seccomp support; running without -sandbox' });
  }
  try {
    const user = await resolveQemuUser();
    checks.push({ name: 'QEMU user', ok: true, required: false, detail: user ? `QEMU drops to ${user.name} (uid ${user.uid}), as a provider's QEMU is unprivileged` : 'QEMU runs as the current user' });
  } catch (e) {
    checks.push({ name: 'QEMU user', ok: false, required: true, detail: (e as Error).message, fix: 'set GVMI_TEST_QEMU_USER to an existing unprivileged user' });
  }
  checks.push({ name: 'cache', ok: true, required: false, detail: cacheDir() });
  const saved = await listSnapshots();
  const snapshotsOn = snapshotsWanted(undefined);
  // An unsafe snapshot directory makes every start fail (setup.unsafe-snapshot-dir): say so here.
  const unsafe = snapshotsOn ? await assertSnapshotDirTrusted().then(() => undefined, (e: unknown) => e) : undefined;
  checks.push(unsafe instanceof GvmiTestError
    ? { name: 'snapshots', ok: false, required: true, detail: unsafe.message, ...(unsafe.hint ? { fix: unsafe.hint } : {}) }
    : {
      name: 'snapshots', ok: true, required: false,
      detail: `${snapshotsOn ? 'on' : 'off (GVMI_TEST_SNAPSHOT)'}: ${saved.length} saved, ${(saved.reduce((n, s) => n + s.bytes, 0) / 1048576).toFixed(0)} MiB in ${snapshotDir()} (budget ${(snapshotBudgetBytes() / 1048576).toFixed(0)} MiB)`,
    });

  return { checks, canRun: checks.every((c) => c.ok || !c.required) };
}
