/**
 * KVM or TCG. KVM only where hardware KVM really works: a para-virtualised /dev/kvm (module
 * kvm_pvm, no vmx/svm flag) opens fine yet hangs stock kernels (reference §7), so the device
 * existing is not enough.
 */
import { access, constants, readdir, readFile } from 'node:fs/promises';
import { GvmiTestError } from '../errors.js';

export type AcceleratorChoice = 'auto' | 'kvm' | 'tcg';

export interface HostFacts {
  modules: readonly string[];
  cpuFlags: readonly string[];
  devKvm: 'read-write' | 'unreadable' | 'missing';
}

export interface Accelerator {
  accel: 'kvm' | 'tcg';
  reason: string;
}

export async function readHostFacts(): Promise<HostFacts> {
  // /sys/module lists built-in modules too; /proc/modules is absent on some kernels.
  const loaded = (await readFile('/proc/modules', 'utf8').catch(() => ''))
    .split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
  const modules = [...new Set([...loaded, ...(await readdir('/sys/module').catch(() => [] as string[]))])];
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const flagsLine = /^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '';
  let devKvm: HostFacts['devKvm'] = 'missing';
  // GVMI_TEST_KVM_DEVICE points elsewhere (tests, containers with the device at another path).
  const device = process.env['GVMI_TEST_KVM_DEVICE'] ?? '/dev/kvm';
  try {
    await access(device, constants.F_OK);
    devKvm = 'unreadable';
    await access(device, constants.R_OK | constants.W_OK);
    devKvm = 'read-write';
  } catch { /* keeps the last state reached */ }
  return { modules, cpuFlags: flagsLine.split(/\s+/).filter(Boolean), devKvm };
}

/** Why hardware KVM can't be used here, or undefined when it can. */
export function kvmProblem(facts: HostFacts): string | undefined {
  if (facts.devKvm === 'missing') return '/dev/kvm does not exist';
  if (facts.devKvm === 'unreadable') return '/dev/kvm is not readable and writable by this user (add yourself to the kvm group)';
  if (facts.modules.includes('kvm_pvm')) return '/dev/kvm is para-virtualised (kvm_pvm), which hangs ordinary guests';
  const hardwareModule = facts.modules.includes('kvm_intel') || facts.modules.includes('kvm_amd');
  const hardwareFlag = facts.cpuFlags.includes('vmx') || facts.cpuFlags.includes('svm');
  if (!hardwareFlag) return 'the CPU shows no vmx/svm flag (no hardware virtualisation)';
  if (!hardwareModule && facts.modules.length > 0) return 'neither kvm_intel nor kvm_amd is loaded';
  return undefined;
}

export function chooseAccelerator(requested: AcceleratorChoice, facts: HostFacts): Accelerator {
  const problem = kvmProblem(facts);
  if (requested === 'tcg') return { accel: 'tcg', reason: 'TCG (requested)' };
  if (requested === 'kvm') {
    // Forcing is for hosts whose facts we misread; a device we can't open, or a para-virtualised
    // KVM that hangs guests, would only turn into a boot timeout.
    if (problem && (facts.devKvm !== 'read-write' || facts.modules.includes('kvm_pvm'))) {
      throw new GvmiTestError('setup.kvm-unusable', `KVM was requested but ${problem}`, { hint: 'use --accel tcg or auto' });
    }
    return { accel: 'kvm', reason: problem ? `KVM (requested, although ${problem})` : 'KVM (requested)' };
  }
  return problem ? { accel: 'tcg', reason: `TCG (${problem})` } : { accel: 'kvm', reason: 'KVM (hardware virtualisation available)' };
}

export function parseAcceleratorChoice(value: string | undefined): AcceleratorChoice {
  if (value === undefined || value === '') return 'auto';
  if (value === 'auto' || value === 'kvm' || value === 'tcg') return value;
  throw new GvmiTestError('usage', `accelerator ${JSON.stringify(value)}: choose auto, kvm or tcg`);
}

/** --accel, else GVMI_TEST_ACCEL, else auto-detection. */
export async function detectAccelerator(requested?: AcceleratorChoice): Promise<Accelerator> {
  const choice = requested && requested !== 'auto' ? requested : parseAcceleratorChoice(process.env['GVMI_TEST_ACCEL']);
  return chooseAccelerator(choice, await readHostFacts());
}
