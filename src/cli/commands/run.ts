import { chmod, open, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { GvmiTestError } from '../../errors.js';
import { parseAcceleratorChoice } from '../../qemu/accelerator.js';
import { signalNumber } from '../../vm/guest-process.js';
import type { StartedVm } from '../../vm/started-vm.js';
import { ExitStatus } from '../program.js';
import { exitCodeFor } from '../exit-codes.js';
import { formatBytes, writeLine, type CliIo } from '../io.js';
import { formatFinding } from '../../diagnostics/finding.js';
import { usageReport, type UsageReport } from '../../diagnostics/usage-report.js';
import { collect, parseKeyValue, parsePositiveInt } from '../options.js';
import { guestArgv } from '../guest-command.js';
import { printable } from '../../terminal-safe.js';
import type { RuntimeRun } from '../../diagnostics/runtime-comparison.js';
import type { RuntimeProfile } from '../../vm/runtime-profile.js';
import { parseRuntimeChoice, singleRuntime } from '../runtime-option.js';
import { RUNTIME_VERSION_ENV } from '../../vm/runtime-env.js';
import { LinePrefixer } from '../line-prefixer.js';

export interface VmFlags {
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

export interface RunFlags extends VmFlags {
  input: string[];
  output?: string;
  timeout?: string;
  json?: boolean;
  report?: boolean;
  quiet?: boolean;
}

/**
 * Options shared by every command that boots a VM. `compare`: the command takes
 * `--runtime-version all` (run only: it runs the command once per runtime).
 */
export function addVmOptions(command: Command, { compare = false }: { compare?: boolean } = {}): Command {
  return command
    .option(compare ? '--runtime-version <0.4|0.5|all>' : '--runtime-version <0.4|0.5>',
      `provider runtime to reproduce: 0.4 (default: 128 MiB overlay, image Env applied) or 0.5 (overlay on the root tmpfs, an EMPTY environment, hostname golem)${compare ? '; all (or both): once under each, then compare' : ''} (env ${RUNTIME_VERSION_ENV})`)
    .option('--volume <GUEST=HOSTDIR>', 'bind a host directory as a volume (repeatable); other VOLUMEs get fresh empty directories', collect, [])
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

export async function startVmFromFlags(image: string, flags: VmFlags, runtimeVersion: RuntimeProfile): Promise<StartedVm> {
  const volumes = Object.fromEntries(flags.volume.map((v) => {
    const [guest, host] = parseKeyValue(v, '--volume');
    return [guest, resolve(host)];
  }));
  const env = Object.fromEntries(flags.env.map((e) => parseKeyValue(e, '--env')));
  // Modules load when a command needs them: every cold run pays for what it imports.
  const { startVm } = await import('../../vm/start-vm.js');
  let logger;
  if (flags.logLevel !== 'silent') {
    const { pino } = await import('pino');
    logger = pino({ level: flags.logLevel }, pino.destination({ dest: 2, sync: true }));
  }
  return startVm({
    image,
    volumes,
    env,
    ...(flags.memory ? { memory: parsePositiveInt(flags.memory, '--memory') } : {}),
    ...(flags.cpus ? { cpus: parsePositiveInt(flags.cpus, '--cpus') } : {}),
    accel: parseAcceleratorChoice(flags.accel),
    runtimeVersion,
    ...(logger ? { logger } : {}),
    keepVolumes: flags.keep ?? false,
    // commander sets snapshot=true unless --no-snapshot; only the flag overrides the environment.
    ...(flags.snapshot === false ? { snapshot: false } : {}),
  });
}

/**
 * A host file given as the command: `run image.gvmi -- ./script.sh args`. An absolute path is the
 * image's: a provider runs the program as given, with no PATH search, so `/bin/sh` is how a
 * requestor names the guest's shell — and every host has a /bin/sh of its own.
 */
async function hostScript(word: string): Promise<string | undefined> {
  if (!word.includes('/') && !word.includes('.')) return undefined; // `ls`, `sh`: guest programs
  if (isAbsolute(word)) return undefined;
  const st = await stat(word).catch(() => undefined);
  return st?.isFile() ? resolve(word) : undefined;
}

async function startsWithShebang(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(2);
    await handle.read(buf, 0, 2, 0);
    return buf.toString('latin1') === '#!';
  } finally {
    await handle.close();
  }
}

function parseInput(spec: string, defaultVolume: string | undefined): { host: string; guest: string } {
  const colon = spec.indexOf(':');
  const host = colon >= 0 ? spec.slice(0, colon) : spec;
  let guest = colon >= 0 ? spec.slice(colon + 1) : undefined;
  if (guest === undefined) {
    if (!defaultVolume) throw new GvmiTestError('transfer.not-in-volume', `--input ${spec}: the image has no volume to put it in`, { hint: 'add a VOLUME to the image, or --volume GUEST=HOSTDIR' });
    guest = `${defaultVolume}/${basename(host)}`;
  }
  return { host: resolve(host), guest };
}

export function registerRun(program: Command, io: CliIo): void {
  addVmOptions(program
    .command('run')
    .description('run a command in the image as a requestor would, and exit with its status')
    .argument('<image>', 'the .gvmi file')
    .argument('<command...>', 'after --: the command, or a host script to upload and run')
    .option('--input <HOSTPATH[:GUESTPATH]>', 'copy a host file into a volume first (default: the first volume) (repeatable)', collect, [])
    .option('--output <HOSTDIR>', 'after the run, copy every volume to HOSTDIR/<volume path> (under --runtime-version all: HOSTDIR/<runtime>/<volume path>)')
    .option('--timeout <seconds>', 'kill the command (and fail) after this long')
    .option('--report', 'after the run, print overlay and volume usage')
    .option('-q, --quiet', "print only the command's own output (no gvmi-test warnings)")
    .option('--json', 'print one JSON result object instead of streaming output'), { compare: true })
    .action(async (image: string, command: string[], flags: RunFlags) => {
      // Checked before anything boots: a typo fails at once.
      const choice = parseRuntimeChoice(flags.runtimeVersion);
      const plan: RunPlan = {
        image, command, flags, io,
        timeoutMs: flags.timeout ? parsePositiveInt(flags.timeout, '--timeout') * 1000 : undefined,
        script: command[0] ? await hostScript(command[0]) : undefined,
      };
      if (choice.kind === 'all') {
        const { runEveryRuntime } = await import('../run-every-runtime.js');
        await runEveryRuntime(plan, choice.profiles);
        return;
      }
      const outcome = await runUnder(plan, choice.profile);
      if (outcome.failure) throw outcome.failure;
      if (flags.json) writeLine(io.stdout, JSON.stringify(outcome.record));
      if (outcome.run.status !== 0) throw new ExitStatus(outcome.run.status);
    });
}

/** One `run` invocation: what to run, and how to show it. */
export interface RunPlan {
  image: string;
  command: string[];
  flags: RunFlags;
  io: CliIo;
  timeoutMs: number | undefined;
  /** The command's first word when it is a host file to upload and run. */
  script: string | undefined;
}

export interface RunOutcome {
  run: RuntimeRun;
  /** The --json object of this run. */
  record: Record<string, unknown>;
  /** The command did not run to its end (timed out): `run` fails with it. */
  failure?: GvmiTestError;
}

/**
 * Boots a VM under `runtime`, runs the plan's command in it and stops it. `label` (compare mode)
 * marks every output line and gvmi-test line with the runtime, and puts --output under
 * HOSTDIR/<runtime>. Errors before the command runs (boot, inputs) are thrown.
 */
export async function runUnder(plan: RunPlan, runtime: RuntimeProfile, label?: string): Promise<RunOutcome> {
  const { command, flags, io, script, timeoutMs } = plan;
  const json = flags.json ?? false;
  const warn = !json && !flags.quiet;
  const tag = label ? `[${label}] ` : '';
  const say = (line: string): void => writeLine(io.stderr, `gvmi-test: ${tag}${line}`);
  await using vm = await startVmFromFlags(plan.image, flags, runtime);
  const firstVolume = vm.volumes.find((v) => vm.info.metadata.volumes.includes(v.guestPath))?.guestPath ?? vm.volumes[0]?.guestPath;

  for (const spec of flags.input) {
    const { host, guest } = parseInput(spec, firstVolume);
    await vm.upload(host, guest);
  }
  let argv = guestArgv(command);
  if (script) {
    if (!firstVolume) {
      throw new GvmiTestError('transfer.not-in-volume', `${command[0]} is a host file, but the image has no volume to upload it to`, {
        hint: 'a requestor can only send files into volumes: add a VOLUME to the image (e.g. /golem/input)',
      });
    }
    const guestPath = `${firstVolume}/${basename(script)}`;
    await vm.upload(script, guestPath);
    const shebang = await startsWithShebang(script);
    if (shebang) await chmod(join(vm.volumes.find((v) => v.guestPath === firstVolume)!.hostPath, basename(script)), 0o755);
    argv = shebang ? [guestPath, ...command.slice(1)] : ['/bin/sh', guestPath, ...command.slice(1)];
  }

  const shadowing = vm.shadowingFinding();
  if (shadowing && warn) say(formatFinding(shadowing));
  const env = Object.fromEntries(flags.env.map((e) => parseKeyValue(e, '--env')));
  // A program that cannot start is not an error here: as on a provider it dies with status 9,
  // and the exec-failed finding says why.
  const process = await vm.spawn(argv, {
    env,
    ...(flags.workdir ? { cwd: flags.workdir } : {}),
    ...(timeoutMs ? { timeoutMs } : {}),
    // Kept for --json, and under `all` to compare the runtimes' streams; else only streamed.
    maxBuffer: json || label ? 64 * 1024 * 1024 : 0,
  });
  const prefixers: LinePrefixer[] = [];
  if (!json) {
    const forward = (stream: NodeJS.WritableStream) => {
      const prefixer = label ? new LinePrefixer(stream, `[${label}] `) : undefined;
      if (prefixer) prefixers.push(prefixer);
      return (data: Buffer): void => {
        if (!(prefixer ? prefixer.write(data) : stream.write(data))) {
          vm.pauseOutput();
          stream.once('drain', () => vm.resumeOutput());
        }
      };
    };
    process.on('stdout', forward(io.stdout));
    process.on('stderr', forward(io.stderr));
  }
  const result = await process.wait();
  for (const p of prefixers) p.finish();
  const findings = [...(shadowing ? [shadowing] : []), ...(await vm.diagnose(result))];
  if (warn) for (const f of findings.filter((x) => x !== shadowing)) say(formatFinding(f));
  const report = flags.report ? await usageReport(vm) : undefined;
  if (report && !json) printReport(report, io, tag);

  if (flags.output) {
    // Volume paths were checked to be plain absolute paths (no `.`/`..`), and nothing below
    // the output directory is followed: each volume lands at <output>/<volume path>.
    const output = label ? join(resolve(flags.output), label) : resolve(flags.output);
    for (const v of vm.volumes) await vm.download(v.guestPath, join(output, v.guestPath), { root: output });
  }
  if (flags.keep) {
    for (const v of vm.volumes) say(`volume ${printable(v.guestPath)} kept at ${printable(v.hostPath)}`);
  }
  const failure = result.timedOut
    ? new GvmiTestError('exec.timeout', `${argv.join(' ')}: still running after ${flags.timeout} s, killed`, {
      hint: 'raise --timeout, or look for a command waiting on input or network (there is none on a provider)',
    })
    : undefined;
  const status = failure ? exitCodeFor(failure.code) : result.exitCode ?? 128 + signalNumber(result.signal ?? 'SIGKILL');
  const record = {
    runtimeVersion: runtime,
    exitCode: result.exitCode,
    signal: result.signal,
    stdout: result.stdout,
    stderr: result.stderr,
    durationMs: result.durationMs,
    bootMs: vm.info.bootMs,
    snapshot: vm.info.snapshot.use,
    accelerator: vm.info.accelerator,
    volumes: vm.volumes.map((v) => ({ guest: v.guestPath, host: v.hostPath, kept: flags.keep ?? false })),
    findings,
    ...(report ? { report } : {}),
  };
  return {
    run: {
      runtimeVersion: runtime, exitCode: result.exitCode, signal: result.signal, status,
      stdout: result.stdout, stderr: result.stderr, findings,
      ...(failure ? { error: { code: failure.code, message: failure.message } } : {}),
    },
    record,
    ...(failure ? { failure } : {}),
  };
}

/** File names here are the guest's (it wrote them) and volume paths the image's: escaped. */
function printReport(report: UsageReport, io: CliIo, tag = ''): void {
  const o = report.overlay;
  writeLine(io.stderr, `gvmi-test: ${tag}overlay (RAM, outside volumes): ${formatBytes(o.usedBytes)} of ${formatBytes(o.totalBytes)} used (${((o.usedBytes / o.totalBytes) * 100).toFixed(0)}%)`);
  for (const f of report.largestOutsideVolumes) writeLine(io.stderr, `    ${formatBytes(f.bytes).padStart(9)}  ${printable(f.path)}`);
  for (const v of report.volumes) writeLine(io.stderr, `gvmi-test: ${tag}volume ${printable(v.guestPath)}: ${formatBytes(v.bytes)} in ${v.files} file(s) (host ${printable(v.hostPath)})`);
}
