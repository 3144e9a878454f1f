/**
 * `gvmi-test doctor`: can this machine run images, and if not, the exact command that fixes it.
 * Two steps: gatherDoctorFacts asks the machine (PATH, /dev/kvm, the runtime build, the snapshot
 * directory), checkDoctorFacts judges what it found. The judgement is pure, so every verdict and
 * fix can be tested with facts written by hand.
 */
import { cacheDir } from '../cache-dir.js';
import { execa } from 'execa';
import { GvmiTestError } from '../errors.js';
import { chooseAccelerator, parseAcceleratorChoice, readHostFacts, type HostFacts } from '../qemu/accelerator.js';
import { resolveQemuUser, type QemuUser } from '../qemu/qemu-user.js';
import { findQemu, findRuntime, qemuSupportsSandbox, type RuntimeFiles } from '../qemu/runtime-files.js';
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

/** A lookup that failed: its message, and the fix it named, if any. */
export interface FailedLookup {
  error: string;
  hint?: string;
}

/** What doctor found on this machine, before any judgement. */
export interface DoctorFacts {
  /** A gvmi-test checkout (fixes name make) or an installed package (fixes name npx gvmi-test setup). */
  checkout: boolean;
  qemu: { path: string; version: string | undefined; sandbox: boolean } | FailedLookup;
  /** GVMI_TEST_ACCEL as set (undefined: not set), and what the host offers. */
  accelerator: { requested: string | undefined; host: HostFacts };
  runtime: RuntimeFiles | FailedLookup;
  /** The first line of each tool's version output, undefined when it does not run. */
  squashfs: { mksquashfs: string | undefined; unsquashfs: string | undefined };
  /** undefined: QEMU runs as the current user. */
  qemuUser: QemuUser | undefined | FailedLookup;
  cacheDir: string;
  snapshots: {
    on: boolean;
    dir: string;
    savedBytes: number[];
    budgetBytes: number;
    /** Why the snapshot directory cannot be trusted (every start would fail), if it cannot. */
    unsafe?: FailedLookup;
  };
}

function failed(value: unknown): value is FailedLookup {
  return typeof value === 'object' && value !== null && 'error' in value;
}

function failedLookup(e: unknown): FailedLookup {
  const hint = e instanceof GvmiTestError ? e.hint : undefined;
  return { error: e instanceof Error ? e.message : String(e), ...(hint ? { hint } : {}) };
}

async function firstLine(cmd: string, args: string[]): Promise<string | undefined> {
  const r = await execa(cmd, args, { reject: false, timeout: 5000 });
  if (r.failed && r.exitCode === undefined) return undefined;
  return `${String(r.stdout)}\n${String(r.stderr)}`.split('\n').find((l) => l.trim())?.trim();
}

/** Asks this machine everything doctor judges. */
export async function gatherDoctorFacts(): Promise<DoctorFacts> {
  const qemu = await findQemu().then(
    async (path) => ({ path, version: await firstLine(path, ['--version']), sandbox: await qemuSupportsSandbox(path) }),
    failedLookup,
  );
  const runtime = await findRuntime().catch(failedLookup);
  const qemuUser = await resolveQemuUser().catch(failedLookup);
  const on = snapshotsWanted(undefined);
  // An unsafe snapshot directory makes every start fail (setup.unsafe-snapshot-dir).
  const unsafe = on ? await assertSnapshotDirTrusted().then(() => undefined, (e: unknown) => e) : undefined;
  return {
    checkout: isCheckout(),
    qemu,
    accelerator: { requested: process.env['GVMI_TEST_ACCEL'], host: await readHostFacts() },
    runtime,
    squashfs: { mksquashfs: await firstLine('mksquashfs', ['-version']), unsquashfs: await firstLine('unsquashfs', ['-version']) },
    qemuUser,
    cacheDir: cacheDir(),
    snapshots: {
      on,
      dir: snapshotDir(),
      savedBytes: (await listSnapshots()).map((s) => s.bytes),
      budgetBytes: snapshotBudgetBytes(),
      ...(unsafe instanceof GvmiTestError ? { unsafe: failedLookup(unsafe) } : {}),
    },
  };
}

const MIB = 1048576;

/** The verdict on `facts`: one check per thing `run` needs or uses, and whether `run` can work. */
export function checkDoctorFacts(facts: DoctorFacts): DoctorReport {
  const checks: DoctorCheck[] = [];
  const { qemu, runtime, qemuUser, snapshots } = facts;

  checks.push(failed(qemu)
    ? { name: 'QEMU', ok: false, required: true, detail: qemu.error, fix: installToolsCommand(facts.checkout) }
    : { name: 'QEMU', ok: true, required: true, detail: `${qemu.path}: ${qemu.version ?? 'version unknown'}` });

  try {
    const choice = parseAcceleratorChoice(facts.accelerator.requested);
    const accel = chooseAccelerator(choice, facts.accelerator.host);
    checks.push({
      name: 'accelerator', ok: true, required: true, detail: accel.reason,
      ...(accel.accel === 'tcg' && choice === 'auto' ? { fix: 'optional: TCG works but is several times slower; with VT-x/AMD-V hardware load kvm_intel/kvm_amd and add yourself to the kvm group' } : {}),
    });
  } catch (e) {
    const { error, hint } = failedLookup(e);
    checks.push({ name: 'accelerator', ok: false, required: true, detail: error, fix: hint ?? 'unset GVMI_TEST_ACCEL or set it to auto' });
  }

  if (failed(runtime)) {
    checks.push({ name: 'guest runtime', ok: false, required: true, detail: runtime.error, fix: runtime.hint ?? restoreRuntimeCommand(facts.checkout) });
  } else {
    const from = { override: 'your override', checkout: "this checkout's build", package: 'shipped in the package' }[runtime.source ?? 'checkout'];
    checks.push({ name: 'guest runtime', ok: true, required: true, detail: `kernel ${runtime.kernelHash} (${runtime.kernel}), init ${runtime.initHash} (${runtime.initramfs}), ${from}` });
  }

  const { mksquashfs, unsquashfs } = facts.squashfs;
  checks.push(mksquashfs && unsquashfs
    ? { name: 'squashfs-tools', ok: true, required: false, detail: mksquashfs }
    : { name: 'squashfs-tools', ok: false, required: false, detail: 'mksquashfs/unsquashfs not found: build and inspect need them', fix: facts.checkout ? 'make deps   (or: sudo apt-get install -y squashfs-tools)' : 'npx gvmi-test setup   (or: sudo apt-get install -y squashfs-tools)' });

  if (!failed(qemu)) {
    checks.push({ name: 'QEMU sandbox', ok: true, required: false, detail: qemu.sandbox ? 'seccomp sandbox (-sandbox on) is used' : 'this QEMU has no seccomp support; running without -sandbox' });
  }
  checks.push(failed(qemuUser)
    ? { name: 'QEMU user', ok: false, required: true, detail: qemuUser.error, fix: 'set GVMI_TEST_QEMU_USER to an existing unprivileged user' }
    : { name: 'QEMU user', ok: true, required: false, detail: qemuUser ? `QEMU drops to ${qemuUser.name} (uid ${qemuUser.uid}), as a provider's QEMU is unprivileged` : 'QEMU runs as the current user' });
  checks.push({ name: 'cache', ok: true, required: false, detail: facts.cacheDir });
  const savedMiB = (snapshots.savedBytes.reduce((n, b) => n + b, 0) / MIB).toFixed(0);
  checks.push(snapshots.unsafe
    ? { name: 'snapshots', ok: false, required: true, detail: snapshots.unsafe.error, ...(snapshots.unsafe.hint ? { fix: snapshots.unsafe.hint } : {}) }
    : {
      name: 'snapshots', ok: true, required: false,
      detail: `${snapshots.on ? 'on' : 'off (GVMI_TEST_SNAPSHOT)'}: ${snapshots.savedBytes.length} saved, ${savedMiB} MiB in ${snapshots.dir} (budget ${(snapshots.budgetBytes / MIB).toFixed(0)} MiB)`,
    });

  return { checks, canRun: checks.every((c) => c.ok || !c.required) };
}

/** Gathers this machine's facts and judges them. */
export async function runDoctor(): Promise<DoctorReport> {
  return checkDoctorFacts(await gatherDoctorFacts());
}
