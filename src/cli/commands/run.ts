import { chmod, open, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { GvmiTestError } from '../../errors.js';
import { parseAcceleratorChoice } from '../../qemu/accelerator.js';
import { signalNumber } from '../../vm/guest-process.js';
import type { StartedVm } from '../../vm/started-vm.js';
import { ExitStatus } from '../program.js';
import { formatBytes, writeLine, type CliIo } from '../io.js';
import { formatFinding } from '../../diagnostics/finding.js';
import { usageReport, type UsageReport } from '../../diagnostics/usage-report.js';
import { collect, parseKeyValue, parsePositiveInt } from '../options.js';
import { printable } from '../../terminal-safe.js';

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
}

interface RunFlags extends VmFlags {
  input: string[];
  output?: string;
  timeout?: string;
  json?: boolean;
  report?: boolean;
  quiet?: boolean;
}

/** Options shared by every command that boots a VM. */
export function addVmOptions(command: Command): Command {
  return command
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

export async function startVmFromFlags(image: string, flags: VmFlags): Promise<StartedVm> {
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
    ...(logger ? { logger } : {}),
    keepVolumes: flags.keep ?? false,
    // commander sets snapshot=true unless --no-snapshot; only the flag overrides the environment.
    ...(flags.snapshot === false ? { snapshot: false } : {}),
  });
}

/** A host file given as the command: `run image.gvmi -- ./script.sh args`. */
async function hostScript(word: string): Promise<string | undefined> {
  if (!word.includes('/') && !word.includes('.')) return undefined; // `ls`, `sh`: guest programs
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
    .option('--output <HOSTDIR>', 'after the run, copy every volume to HOSTDIR/<volume path>')
    .option('--timeout <seconds>', 'kill the command (and fail) after this long')
    .option('--report', 'after the run, print overlay and volume usage')
    .option('-q, --quiet', "print only the command's own output (no gvmi-test warnings)")
    .option('--json', 'print one JSON result object instead of streaming output'))
    .action(async (image: string, command: string[], flags: RunFlags) => {
      const timeoutMs = flags.timeout ? parsePositiveInt(flags.timeout, '--timeout') * 1000 : undefined;
      const script = command[0] ? await hostScript(command[0]) : undefined;
      await using vm = await startVmFromFlags(image, flags);
      const firstVolume = vm.volumes.find((v) => vm.info.metadata.volumes.includes(v.guestPath))?.guestPath ?? vm.volumes[0]?.guestPath;

      for (const spec of flags.input) {
        const { host, guest } = parseInput(spec, firstVolume);
        await vm.upload(host, guest);
      }
      let argv = command;
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

      const json = flags.json ?? false;
      const shadowing = vm.shadowingFinding();
      const warn = !json && !flags.quiet;
      if (shadowing && warn) writeLine(io.stderr, `gvmi-test: ${formatFinding(shadowing)}`);
      const process = await vm.spawn(argv, {
        ...(flags.workdir ? { cwd: flags.workdir } : {}),
        ...(timeoutMs ? { timeoutMs } : {}),
        maxBuffer: json ? 64 * 1024 * 1024 : 0,
      });
      if (!json) {
        const forward = (stream: NodeJS.WritableStream) => (data: Buffer): void => {
          if (!stream.write(data)) {
            vm.pauseOutput();
            stream.once('drain', () => vm.resumeOutput());
          }
        };
        process.on('stdout', forward(io.stdout));
        process.on('stderr', forward(io.stderr));
      }
      const result = await process.wait();
      const findings = [...(shadowing ? [shadowing] : []), ...(await vm.diagnose(result))];
      if (warn) for (const f of findings.filter((x) => x !== shadowing)) writeLine(io.stderr, `gvmi-test: ${formatFinding(f)}`);
      const report = flags.report ? await usageReport(vm) : undefined;
      if (report && !json) printReport(report, io);

      if (flags.output) {
        // Volume paths were checked to be plain absolute paths (no `.`/`..`), and nothing below
        // the output directory is followed: each volume lands at <output>/<volume path>.
        const output = resolve(flags.output);
        for (const v of vm.volumes) await vm.download(v.guestPath, join(output, v.guestPath), { root: output });
      }
      if (flags.keep) {
        for (const v of vm.volumes) writeLine(io.stderr, `gvmi-test: volume ${printable(v.guestPath)} kept at ${printable(v.hostPath)}`);
      }
      if (result.timedOut) {
        throw new GvmiTestError('exec.timeout', `${argv.join(' ')}: still running after ${flags.timeout} s, killed`, {
          hint: 'raise --timeout, or look for a command waiting on input or network (there is none on a provider)',
        });
      }
      const status = result.exitCode ?? 128 + signalNumber(result.signal ?? 'SIGKILL');
      if (json) {
        writeLine(io.stdout, JSON.stringify({
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
        }));
      }
      if (status !== 0) throw new ExitStatus(status);
    });
}


/** File names here are the guest's (it wrote them) and volume paths the image's: escaped. */
function printReport(report: UsageReport, io: CliIo): void {
  const o = report.overlay;
  writeLine(io.stderr, `gvmi-test: overlay (RAM, outside volumes): ${formatBytes(o.usedBytes)} of ${formatBytes(o.totalBytes)} used (${((o.usedBytes / o.totalBytes) * 100).toFixed(0)}%)`);
  for (const f of report.largestOutsideVolumes) writeLine(io.stderr, `    ${formatBytes(f.bytes).padStart(9)}  ${printable(f.path)}`);
  for (const v of report.volumes) writeLine(io.stderr, `gvmi-test: volume ${printable(v.guestPath)}: ${formatBytes(v.bytes)} in ${v.files} file(s) (host ${printable(v.hostPath)})`);
}
