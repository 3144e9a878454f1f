/**
 * The guest's memory and CPUs, checked before anything boots: out of range, QEMU fails in ways
 * that do not say why (with 1 MiB it exits 0 without a word; with 32 MiB the kernel panics
 * "System is deadlocked on memory"; with more than the host has, QEMU cannot allocate it).
 */
import { freemem } from 'node:os';
import { GvmiTestError } from '../errors.js';

/**
 * The least memory the guest is given. Measured with the tiny busybox image under TCG, both
 * runtimes: 32 MiB panics at boot (deadlocked on memory), 40 and 48 MiB boot but a command
 * writing 20 MiB to the overlay is OOM-killed, 56 MiB and up run it. 64 MiB leaves a margin; a
 * provider's VM is never this small.
 */
export const MIN_MEMORY_MIB = 64;
export const DEFAULT_MEMORY_MIB = 512;
/** The guest kernel's CONFIG_NR_CPUS (runtime/kernel/gvmi.config): more CPUs would never be used. */
export const MAX_CPUS = 64;

const MIB = 1024 * 1024;

/**
 * The most memory a VM may ask for here: what the host has available now (MemAvailable), or the
 * cgroup's limit when that is lower. QEMU allocates guest memory lazily, but a guest given more
 * than the host can back is killed by the host's OOM killer the moment it uses it.
 */
export function hostMemoryLimitMiB(): number {
  const available = freemem();
  const constrained = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0;
  const limit = constrained && constrained > 0 ? Math.min(available, constrained) : available;
  return Math.floor(limit / MIB);
}

export interface ResourceRequest {
  memory?: number;
  cpus?: number;
  overlayMiB?: number;
}

/** Throws `usage`, naming the allowed range, for memory, CPUs or overlay size a VM cannot have. */
export function validateResources(request: ResourceRequest, hostLimitMiB: () => number = hostMemoryLimitMiB): void {
  const { memory, cpus, overlayMiB } = request;
  if (memory !== undefined) {
    const max = hostLimitMiB();
    const range = `allowed here: ${MIN_MEMORY_MIB} to ${Math.max(max, MIN_MEMORY_MIB)} MiB`;
    const hint = `choose between ${MIN_MEMORY_MIB} and ${Math.max(max, MIN_MEMORY_MIB)} MiB (--memory; the default is ${DEFAULT_MEMORY_MIB})`;
    if (!Number.isInteger(memory) || memory <= 0) {
      throw new GvmiTestError('usage', `guest memory ${memory}: a whole number of MiB is needed (${range})`, { hint });
    }
    if (memory < MIN_MEMORY_MIB) {
      throw new GvmiTestError('usage', `guest memory ${memory} MiB is too little: the guest needs at least ${MIN_MEMORY_MIB} MiB to boot and run a command (below about 40 MiB its kernel stops at boot) (${range})`, { hint });
    }
    if (memory > max) {
      throw new GvmiTestError('usage', `guest memory ${memory} MiB is more than this host has available (${max} MiB free): QEMU could not back it (${range})`, {
        hint: max >= MIN_MEMORY_MIB ? hint : 'free memory on the host (stop other VMs or programs), then try again',
      });
    }
  }
  if (cpus !== undefined && (!Number.isInteger(cpus) || cpus < 1 || cpus > MAX_CPUS)) {
    throw new GvmiTestError('usage', `guest CPUs ${cpus}: allowed: 1 to ${MAX_CPUS} (the guest kernel uses no more)`, { hint: 'choose a whole number of CPUs (--cpus; the default is 1)' });
  }
  if (overlayMiB !== undefined && (!Number.isInteger(overlayMiB) || overlayMiB < 1)) {
    throw new GvmiTestError('usage', `overlay size ${overlayMiB}: a whole number of MiB, at least 1, is needed (a provider's is 128)`);
  }
}
