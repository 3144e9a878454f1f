/**
 * A VM started the way ya-runtime-vm's vmrt.rs starts one (v0.5.2 `start_vmrt`, vmrt.rs:57-258),
 * without anything of gvmi-test's agent client: QEMU is spawned with the project's own argument
 * builder (so the VM is the one gvmi-test boots), QEMU listens on the agent socket
 * (`server=on,wait=off`), and the host connects when it likes, as the Rust host does. The image's
 * volumes get 9p devices mnt0, mnt1, ... (planVolumes, as vmrt.rs:215-222 numbers them).
 *
 * Nothing is sent by this file: connecting, mounting and everything after is the test's, through
 * test/helpers/golem-host.ts.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { dir as tempDir } from 'tmp-promise';
import { readGvmi } from '../../src/image/gvmi-file.js';
import { detectAccelerator, type Accelerator } from '../../src/qemu/accelerator.js';
import { buildQemuArgs, type NicDevice } from '../../src/qemu/qemu-args.js';
import { spawnQemu, type QemuExit, type QemuProcess } from '../../src/qemu/qemu-process.js';
import { resolveQemuUser } from '../../src/qemu/qemu-user.js';
import { findQemu, findRuntime, qemuSupportsSandbox } from '../../src/qemu/runtime-files.js';
import type { RuntimeProfile } from '../../src/runtime-profile.js';
import { planVolumes, type VolumeMount } from '../../src/vm/volumes.js';

export interface ProviderVmOptions {
  image: string;
  /** `gvmi.runtime=` on the kernel command line: which upstream guest to reproduce. */
  runtime: RuntimeProfile;
  memoryMiB?: number;
  hostname?: string;
  /** NICs as a provider attaches them (qemu-args.ts nicArgs); none by default. */
  nics?: readonly NicDevice[];
}

export interface ProviderVm {
  /** The unix socket QEMU listens on (vmrt.rs:70, 80-83). */
  agentSocket: string;
  consoleLog: string;
  accelerator: Accelerator;
  /** mnt<k> → guest path, in the order vmrt.rs mounts them (vmrt.rs:245-252). */
  volumes: VolumeMount[];
  qemu: QemuProcess;
  /** Resolves with QEMU's exit (never rejects). */
  exited: Promise<QemuExit>;
  /** Kills QEMU if it still runs, then removes the VM's temporary directories. */
  dispose(): Promise<void>;
}

export async function startProviderVm(options: ProviderVmOptions): Promise<ProviderVm> {
  const [image, runtime, qemuPath, accelerator, qemuUser] = await Promise.all([
    readGvmi(options.image), findRuntime(), findQemu(), detectAccelerator(), resolveQemuUser(),
  ]);
  const sandbox = await qemuSupportsSandbox(qemuPath);
  const privateDir = await tempDir({ prefix: 'gvmi-upstream-', unsafeCleanup: true, mode: 0o700 });
  const planned = await planVolumes(image.metadata.volumes, {}, qemuUser).catch(async (error: unknown) => {
    await privateDir.cleanup();
    throw error;
  });
  const agentSocket = join(privateDir.path, 'agent.sock');
  const consoleLog = join(privateDir.path, 'console.log');
  const args = buildQemuArgs({
    accelerator,
    memoryMiB: options.memoryMiB ?? 512,
    cpus: 1,
    kernel: runtime.kernel,
    initramfs: runtime.initramfs,
    image: options.image,
    agentSocket,
    consoleLog,
    volumes: planned.mounts.map((m) => ({ tag: m.tag, hostPath: m.hostPath })),
    hostname: options.hostname ?? 'golem',
    overlayMiB: 128,
    runtime: options.runtime,
    sandbox,
    ...(qemuUser ? { runAs: qemuUser.name } : {}),
    ...(options.nics ? { nics: options.nics } : {}),
  });
  const qemu = spawnQemu(qemuPath, args, undefined, [], [privateDir.path, ...planned.mounts.map((m) => m.hostPath)]);
  let disposed = false;
  return {
    agentSocket, consoleLog, accelerator, volumes: planned.mounts, qemu, exited: qemu.exited,
    async dispose() {
      if (disposed) return;
      disposed = true;
      qemu.kill('SIGKILL');
      await qemu.exited;
      await planned.cleanup().catch(() => {});
      await rm(privateDir.path, { recursive: true, force: true });
    },
  };
}

/**
 * What the guest agent prints on the console each time it finds no host on its port: once at boot,
 * when it is up and waits for its first host, and again after every disconnect (agent.c
 * host_went_away; upstream's communication.c waits the same way).
 */
export const WAITING_FOR_HOST = 'gvmi-agent: waiting for host connection ...';

/**
 * Resolves once the VM's console holds `line` at least `count` times; rejects if QEMU ends first
 * or after `timeoutMs` (a bound for a stuck guest, not a timing assertion).
 */
export async function waitForConsoleLine(vm: ProviderVm, line: string, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(vm.consoleLog, 'utf8').catch(() => '');
    if (text.split('\n').filter((l) => l.includes(line)).length >= count) return;
    if (!vm.qemu.running) throw new Error(`QEMU ended before the console showed "${line}" ${count}x: ${vm.qemu.stderr()}\n${text}`);
    if (Date.now() > deadline) throw new Error(`the console did not show "${line}" ${count}x within ${timeoutMs} ms:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
