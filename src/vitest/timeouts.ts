/**
 * How much longer things take here than under KVM. Under TCG the guest is emulated: boots and
 * commands take several times longer. Tests write timeouts for KVM and scale them with this.
 */
import { accessSync, constants, readFileSync, readdirSync } from 'node:fs';
import { chooseAccelerator, parseAcceleratorChoice, type HostFacts } from '../qemu/accelerator.js';

/** TCG's slowdown over KVM measured on this project's machines for boot + short commands (×4–6). */
const TCG_FACTOR = 5;

function hostFactsSync(): HostFacts {
  const modules = [
    ...(() => { try { return readFileSync('/proc/modules', 'utf8').split('\n').map((l) => l.split(' ')[0] ?? ''); } catch { return []; } })(),
    ...(() => { try { return readdirSync('/sys/module'); } catch { return []; } })(),
  ].filter(Boolean);
  let cpuFlags: string[] = [];
  try {
    cpuFlags = (/^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').split(/\s+/);
  } catch { /* none */ }
  let devKvm: HostFacts['devKvm'] = 'missing';
  const device = process.env['GVMI_TEST_KVM_DEVICE'] ?? '/dev/kvm';
  try {
    accessSync(device, constants.F_OK);
    devKvm = 'unreadable';
    accessSync(device, constants.R_OK | constants.W_OK);
    devKvm = 'read-write';
  } catch { /* the last state reached */ }
  return { modules, cpuFlags, devKvm };
}

let cached: number | undefined;

/** 1 under KVM, TCG_FACTOR under TCG; GVMI_TEST_TIMEOUT_SCALE overrides. */
export function timeoutScale(): number {
  if (cached !== undefined) return cached;
  const override = Number(process.env['GVMI_TEST_TIMEOUT_SCALE']);
  if (Number.isFinite(override) && override > 0) return (cached = override);
  try {
    const accel = chooseAccelerator(parseAcceleratorChoice(process.env['GVMI_TEST_ACCEL']), hostFactsSync());
    cached = accel.accel === 'kvm' ? 1 : TCG_FACTOR;
  } catch {
    cached = TCG_FACTOR;
  }
  return cached;
}

/** A timeout written for KVM, scaled to this machine's accelerator. */
export function vmTimeout(kvmMs: number): number {
  return Math.round(kvmMs * timeoutScale());
}
