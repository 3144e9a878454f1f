/**
 * The options of every command that boots a VM (run, serve, shell, start-entrypoint), and the
 * VM they describe.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { parseAcceleratorChoice } from '../qemu/accelerator.js';
import type { StartedVm } from '../vm/started-vm.js';
import type { RuntimeProfile } from '../runtime-profile.js';
import { RUNTIME_VERSION_ENV } from '../vm/runtime-env.js';
import { collect, parseKeyValue, parsePositiveInt } from './options.js';
import { parseRuntimeChoice, singleRuntime } from './runtime-option.js';
import { startStoppable } from './termination.js';
import { deployVolumesFromFlags, type DeployVolumeFlags } from './deploy-volume-options.js';
import { addNetworkOptions, networkingFromFlags, type NetworkFlags } from './vm-network-options.js';
import type { CliIo } from './io.js';

export interface VmFlags extends DeployVolumeFlags, NetworkFlags {
  volume: string[];
  env: string[];
  workdir?: string;
  memory?: string;
  cpus?: string;
  accel?: string;
  logLevel: string;
  keep?: boolean;
  snapshot: boolean;
  runtimeVersion?: string;
}

/**
 * Options shared by every command that boots a VM. `compare`: the command takes
 * `--runtime-version all` (run only: it runs the command once per runtime).
 */
export function addVmOptions(command: Command, { compare = false }: { compare?: boolean } = {}): Command {
  return addNetworkOptions(command)
    .option(compare ? '--runtime-version <0.4|0.5|all>' : '--runtime-version <0.4|0.5>',
      `provider runtime to reproduce: 0.4 (default: 128 MiB overlay, image Env applied) or 0.5 (overlay on the root tmpfs, an EMPTY environment, hostname golem)${compare ? '; all (or both): once under each, then compare' : ''} (env ${RUNTIME_VERSION_ENV})`)
    .option('--volume <GUEST=HOSTDIR>', 'bind a host directory as a volume (repeatable); other VOLUMEs get fresh empty directories', collect, [])
    .option('--host-volume <PATH>', 'runtime 0.5: a host volume the deploy adds (a fresh empty directory over 9p; any path but /) (repeatable)', collect, [])
    .option('--ram-volume <PATH:SIZE>', 'runtime 0.5: a tmpfs of SIZE (MiB, or 64M, 1G) at PATH; at / it is the space outside volumes (repeatable)', collect, [])
    .option('--storage-volume <PATH:SIZE[:ERRORS]>', 'runtime 0.5: an ext2 disk of SIZE at PATH, errors=continue (default), remount-ro or panic (repeatable)', collect, [])
    .option('--env <KEY=VALUE>', 'add to the image Env for every process (repeatable)', collect, [])
    .option('--workdir <path>', 'working directory (default: the image WORKDIR)')
    .option('--memory <MiB>', 'guest memory in MiB (default 512)')
    .option('--cpus <n>', 'guest CPUs (default 1)')
    .option('--accel <auto|kvm|tcg>', 'accelerator (default auto; env GVMI_TEST_ACCEL)')
    .option('--keep', 'keep the temporary volume directories and print where they are')
    .option('--no-snapshot', 'boot from scratch: neither restore a saved snapshot of the booted image nor save one (env GVMI_TEST_SNAPSHOT=0)')
    .option('--log-level <level>', 'pino log level on stderr (trace, debug, info, warn, error, silent)', 'silent');
}

/** The runtime of a command that boots one VM: --runtime-version, else the environment; never `all`. */
export function runtimeFromFlags(flags: VmFlags, command: string): RuntimeProfile {
  return singleRuntime(parseRuntimeChoice(flags.runtimeVersion), command);
}

/**
 * `io`: where the network options say what they did (forwards, outbound refusals; not refusals
 * when `quiet`), each line after `tag` when given (`[0.4] ` under `run --runtime-version all`).
 */
export async function startVmFromFlags(image: string, flags: VmFlags, runtimeVersion: RuntimeProfile, io?: CliIo, { quiet = false, tag = '' } = {}): Promise<StartedVm> {
  const volumes = Object.fromEntries(flags.volume.map((v) => {
    const [guest, host] = parseKeyValue(v, '--volume');
    return [guest, resolve(host)];
  }));
  const env = Object.fromEntries(flags.env.map((e) => parseKeyValue(e, '--env')));
  const deployVolumes = deployVolumesFromFlags(flags);
  const networking = await networkingFromFlags(flags, io, { quiet, tag });
  // Modules load when a command needs them: every cold run pays for what it imports.
  const { startVm } = await import('../vm/start-vm.js');
  let logger;
  if (flags.logLevel !== 'silent') {
    const { pino } = await import('pino');
    logger = pino({ level: flags.logLevel }, pino.destination({ dest: 2, sync: true }));
  }
  const options = {
    image,
    volumes,
    ...(Object.keys(deployVolumes).length > 0 ? { deployVolumes } : {}),
    env,
    ...(flags.memory ? { memory: parsePositiveInt(flags.memory, '--memory') } : {}),
    ...(flags.cpus ? { cpus: parsePositiveInt(flags.cpus, '--cpus') } : {}),
    accel: parseAcceleratorChoice(flags.accel),
    runtimeVersion,
    ...(logger ? { logger } : {}),
    keepVolumes: flags.keep ?? false,
    // commander sets snapshot=true unless --no-snapshot; only the flag overrides the environment.
    ...(flags.snapshot === false ? { snapshot: false } : {}),
    ...networking.options,
  };
  // A signal or a closed output stops it before the process exits (src/cli/termination.ts).
  const vm = await startStoppable((signal) => startVm({ ...options, signal }));
  await networking.attach(vm).catch(async (error: unknown) => {
    await vm.stop();
    throw error;
  });
  return vm;
}

