/**
 * startVm: boots a .gvmi the way a provider does and returns a StartedVm once the guest agent
 * answers and every volume is mounted. Any failure on the way rolls everything back (QEMU killed,
 * temporary directories removed) and rethrows the first error.
 */
import { once } from 'node:events';
import { chmod } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { silentLogger } from '../logger.js';
import { dir as tempDir } from 'tmp-promise';
import { AgentClient } from '../agent/agent-client.js';
import { GvmiTestError } from '../errors.js';
import { readGvmi } from '../image/gvmi-file.js';
import { detectAccelerator, type AcceleratorChoice } from '../qemu/accelerator.js';
import { buildQemuArgs } from '../qemu/qemu-args.js';
import { findQemu, findRuntime, qemuSupportsSandbox } from '../qemu/runtime-files.js';
import { resolveQemuUser } from '../qemu/qemu-user.js';
import { spawnQemu } from '../qemu/qemu-process.js';
import { listSquashfs } from '../image/squashfs-listing.js';
import { shadowedEntries } from '../diagnostics/static-findings.js';
import { consoleTail, explainInitFailure, findKernelPanic, parseInitFailure, readConsole } from './console-log.js';
import { StartedVm } from './started-vm.js';
import { planVolumes } from './volumes.js';

export interface StartVmOptions {
  image: string;
  /** Guest path -> host directory. Image VOLUMEs not listed get a fresh empty temporary directory. */
  volumes?: Record<string, string>;
  /** MiB of guest RAM (default 512). */
  memory?: number;
  cpus?: number;
  accel?: AcceleratorChoice;
  /** Added to the image Env for every process. */
  env?: Record<string, string>;
  /** Size of the overlay's writable tmpfs in MiB (a provider's is 128). */
  overlayMiB?: number;
  hostname?: string;
  logger?: Logger;
  signal?: AbortSignal;
  /** How long the guest may take to answer (default 60 s under TCG, 20 s under KVM). */
  bootTimeoutMs?: number;
  /** Keep temporary volume directories after stop (their paths are in vm.volumes). */
  keepVolumes?: boolean;
}

let vmCounter = 0;

async function crashError(consoleLog: string, exit: string | number): Promise<GvmiTestError> {
  const panic = findKernelPanic(await readConsole(consoleLog));
  return new GvmiTestError('vm.crashed', `the guest crashed: ${panic ?? `QEMU exited (${exit})`}`, {
    hint: panic ? 'the guest kernel panicked; the console tail below shows what led to it' : 'QEMU ended unexpectedly (killed from outside, or out of host memory?)',
    details: { consoleTail: await consoleTail(consoleLog, 25) },
  });
}

function bootError(code: 'vm.boot-failed' | 'vm.boot-timeout', message: string, tail: string, consoleText: string, qemuStderr: string): GvmiTestError {
  const initFailure = parseInitFailure(consoleText);
  const panic = findKernelPanic(consoleText);
  const hint = initFailure ? explainInitFailure(initFailure) : panic ? `the guest kernel panicked: ${panic}` : qemuStderr.trim() ? `QEMU said: ${qemuStderr.trim().split('\n').slice(-3).join(' | ')}` : undefined;
  return new GvmiTestError(code, message, {
    ...(hint ? { hint } : {}),
    details: { consoleTail: tail, ...(initFailure ? { initFailure } : {}), ...(qemuStderr ? { qemuStderr } : {}) },
  });
}

export async function startVm(options: StartVmOptions): Promise<StartedVm> {
  const started = performance.now();
  const logger = (options.logger ?? silentLogger).child({ vm: ++vmCounter });
  const imagePath = resolve(options.image);
  // The file list (for shadowing warnings) is read while the VM boots; it is best-effort.
  const listing = listSquashfs(imagePath).catch(() => []);
  const [image, runtime, qemuPath, accelerator] = await Promise.all([
    readGvmi(imagePath),
    findRuntime(),
    findQemu(),
    detectAccelerator(options.accel),
  ]);
  const [sandbox, qemuUser] = await Promise.all([qemuSupportsSandbox(qemuPath), resolveQemuUser()]);
  logger.debug({ accelerator }, 'accelerator chosen');

  const cleanups: (() => Promise<void>)[] = [];
  let keepVolumes = options.keepVolumes ?? false;
  const cleanup = async (keep: boolean): Promise<void> => {
    keepVolumes = keep;
    for (const c of cleanups.reverse()) await c().catch(() => {});
    cleanups.length = 0;
  };
  let server: Server | undefined;
  try {
    const privateDir = await tempDir({ prefix: 'gvmi-vm-', unsafeCleanup: true, mode: 0o700 });
    cleanups.push(() => privateDir.cleanup());
    const planned = await planVolumes(image.metadata.volumes, options.volumes, qemuUser);
    cleanups.push(() => (keepVolumes ? Promise.resolve() : planned.cleanup()));

    const agentSocket = join(privateDir.path, 'agent.sock');
    const consoleLog = join(privateDir.path, 'console.log');
    server = createServer();
    server.listen(agentSocket);
    await once(server, 'listening');
    await chmod(agentSocket, 0o600);
    const connection = once(server, 'connection') as Promise<[Socket]>;

    const memoryMiB = options.memory ?? 512;
    const cpus = options.cpus ?? 1;
    const args = buildQemuArgs({
      accelerator, memoryMiB, cpus,
      kernel: runtime.kernel,
      initramfs: runtime.initramfs,
      image: imagePath,
      agentSocket,
      consoleLog,
      volumes: planned.mounts.map((m) => ({ tag: m.tag, hostPath: m.hostPath })),
      hostname: options.hostname ?? 'golem',
      overlayMiB: options.overlayMiB ?? 128,
      sandbox,
      ...(qemuUser ? { runAs: qemuUser.name } : {}),
    });
    logger.debug({ qemu: qemuPath, args }, 'starting QEMU');
    const proc = spawnQemu(qemuPath, args, options.signal);
    cleanups.push(async () => {
      proc.kill('SIGKILL');
      await proc.exited;
    });

    const bootTimeoutMs = options.bootTimeoutMs ?? (accelerator.accel === 'kvm' ? 20_000 : 60_000);
    const failure = async (code: 'vm.boot-failed' | 'vm.boot-timeout', message: string): Promise<never> => {
      const text = await readConsole(consoleLog);
      throw bootError(code, message, await consoleTail(consoleLog, 25), text, proc.stderr());
    };
    let watchdog: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => { watchdog = setTimeout(() => r('timeout'), bootTimeoutMs); });
    const exited = proc.exited.then((r) => ({ exited: r }));
    const aborted = new Promise<'aborted'>((r) => options.signal?.addEventListener('abort', () => r('aborted'), { once: true }));

    try {
      const first = await Promise.race([connection, exited, timeout, aborted]);
      if (first === 'timeout') return await failure('vm.boot-timeout', `QEMU did not connect to the agent channel within ${bootTimeoutMs} ms`);
      if (first === 'aborted') throw new GvmiTestError('vm.boot-failed', 'start aborted');
      if (!Array.isArray(first)) return await failure('vm.boot-failed', `QEMU exited (${first.exited.exitCode ?? first.exited.signal}) before the guest booted`);
      const socket = (first as [Socket])[0];
      server.close();
      server = undefined;
      let vmRef: StartedVm | undefined;
      // The channel closes first when the guest dies; QEMU's exit and the console tell why.
      const explainDisconnect = async (): Promise<GvmiTestError> => {
        if (vmRef?.stopped) return new GvmiTestError('vm.stopped', 'the VM has been stopped');
        const exit = await Promise.race([proc.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000).unref())]);
        return crashError(consoleLog, exit ? (exit.exitCode ?? exit.signal ?? 'unknown') : 'still running');
      };
      const client = new AgentClient(socket, logger, explainDisconnect);
      cleanups.push(async () => { socket.destroy(); });
      const ready = once(client, 'ready') as Promise<[number]>;
      const outcome = await Promise.race([ready, exited, timeout, aborted]);
      if (outcome === 'timeout') return await failure('vm.boot-timeout', `the guest agent did not answer within ${bootTimeoutMs} ms`);
      if (outcome === 'aborted') throw new GvmiTestError('vm.boot-failed', 'start aborted');
      if (!Array.isArray(outcome)) return await failure('vm.boot-failed', 'the guest stopped before its agent answered');
      const guestUptimeMs = (outcome as [number])[0];
      logger.debug({ guestUptimeMs }, 'agent ready');

      for (const m of planned.mounts) await client.mountVolume(m.tag, m.guestPath);

      const entries = await listing;
      const shadowed = shadowedEntries({ ...image.metadata, volumes: planned.mounts.map((m) => m.guestPath) }, entries).map((e) => e.path);
      const vm = new StartedVm({
        client, qemu: proc, logger, volumes: planned.mounts,
        info: { image: imagePath, metadata: image.metadata, accelerator, memoryMiB, cpus, bootMs: Math.round(performance.now() - started), consoleLog, shadowed },
        cleanup, keepVolumes,
      });
      vmRef = vm;
      void proc.exited.then(async (r) => {
        if (vm.stopped) return;
        vm.markCrashed(await crashError(consoleLog, r.exitCode ?? r.signal ?? 'unknown'));
        await cleanup(keepVolumes);
      });
      return vm;
    } finally {
      clearTimeout(watchdog);
    }
  } catch (error) {
    server?.close();
    await cleanup(false);
    throw error;
  }
}
