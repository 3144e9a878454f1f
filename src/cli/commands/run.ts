import { chmod, lstat, open, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, posix, resolve } from 'node:path';
import type { Command } from 'commander';
import { GvmiTestError } from '../../errors.js';
import { parseAcceleratorChoice } from '../../qemu/accelerator.js';
import { signalNumber, type GuestProcess } from '../../vm/guest-process.js';
import type { StartedVm } from '../../vm/started-vm.js';
import { exitCodeFor, ExitStatus } from '../exit-codes.js';
import { reportError } from '../report-error.js';
import { formatBytes, writeLine, type CliIo } from '../io.js';
import { formatFinding, type Finding } from '../../diagnostics/finding.js';
import { extraVolumeFinding, shadowingFinding } from '../../diagnostics/run-findings.js';
import { usageReport, type UsageReport } from '../../diagnostics/usage-report.js';
import { collect, parseKeyValue, parsePositiveInt } from '../options.js';
import { guestArgv, optionsEndAtGuestCommand } from '../guest-command.js';
import { printable } from '../../terminal-safe.js';
import type { RuntimeRun } from '../../diagnostics/runtime-comparison.js';
import type { RuntimeProfile } from '../../runtime-profile.js';
import { parseRuntimeChoice, singleRuntime } from '../runtime-option.js';
import { RUNTIME_VERSION_ENV } from '../../vm/runtime-env.js';
import { LinePrefixer } from '../line-prefixer.js';
import { startStoppable } from '../termination.js';
import { imagePathFor, withEngineImage } from '../image-argument.js';

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
  script?: string;
  /** false with --no-stdin */
  stdin: boolean;
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
  const options = {
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
  };
  // A signal or a closed output stops it before the process exits (src/cli/termination.ts).
  return startStoppable((signal) => startVm({ ...options, signal }));
}

/**
 * A host file given as the command: `run image.gvmi -- ./script.sh args`, or `--script PATH`
 * (any path, absolute too). Without --script, an absolute path is the image's: a provider runs
 * the program as given, with no PATH search, so `/bin/sh` is how a requestor names the guest's
 * shell — and every host has a /bin/sh of its own.
 */
async function hostScript(word: string): Promise<string | undefined> {
  if (!word.includes('/') && !word.includes('.')) return undefined; // `ls`, `sh`: guest programs
  if (isAbsolute(word)) return undefined;
  const st = await stat(word).catch(() => undefined);
  return st?.isFile() ? resolve(word) : undefined;
}

async function forcedScript(path: string): Promise<string> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) throw new GvmiTestError('usage', `--script ${path}: ${st ? 'not a regular file' : 'no such file'} on this host`);
  return resolve(path);
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

/**
 * `--input HOST[:GUEST]`. Without GUEST the file goes into the default (first) volume; a GUEST
 * ending in `/` is a directory to put it into, under its own name, as with `cp x dir/`.
 */
export function parseInput(spec: string, defaultVolume: string | undefined): { host: string; guest: string } {
  const colon = spec.indexOf(':');
  const host = colon >= 0 ? spec.slice(0, colon) : spec;
  let guest = colon >= 0 ? spec.slice(colon + 1) : undefined;
  if (guest === undefined) {
    if (!defaultVolume) {
      throw new GvmiTestError('transfer.not-in-volume', `--input ${spec}: the image has no volume to put it in`, {
        hint: 'a requestor can only send files into volumes: add a VOLUME to the image (e.g. VOLUME /golem/input)',
      });
    }
    guest = `${defaultVolume}/${basename(host)}`;
  } else if (guest.endsWith('/')) {
    guest = `${guest}${basename(resolve(host))}`;
  }
  return { host: resolve(host), guest };
}

/** The run's own inputs replace these shadowed files: the image's copy is not what the command misses. */
async function replacedByInputs(vm: StartedVm, shadowed: readonly string[], uploaded: readonly string[]): Promise<Set<string>> {
  const replaced = new Set<string>();
  const targets = uploaded.map((g) => posix.normalize(g).replace(/\/+$/, ''));
  for (const path of shadowed) {
    if (!targets.some((t) => path === t || path.startsWith(`${t}/`))) continue;
    const mount = vm.volumes.find((v) => path.startsWith(`${v.guestPath}/`));
    if (!mount) continue;
    if (await lstat(join(mount.hostPath, path.slice(mount.guestPath.length + 1))).then(() => true, () => false)) replaced.add(path);
  }
  return replaced;
}

export function registerRun(program: Command, io: CliIo): void {
  const run = addVmOptions(program
    .command('run')
    .description('run a command in the image as a requestor would, and exit with its status')
    .argument('<image>', 'the .gvmi file, or IMAGE[:TAG] of the local Docker or Podman engine (converted once, cached)')
    .argument('[command...]', 'the command (`--` before it is optional: every word from its first on is the command\'s), or a host script to upload and run')
    .option('--input <HOSTPATH[:GUESTPATH]>', 'copy a host file into a volume first (default: the first volume; GUESTPATH ending in / is a directory to put it in) (repeatable)', collect, [])
    .option('--script <HOSTPATH>', 'upload this host file into the first volume and run it (the command words are its arguments); without it only a relative path to a host file is uploaded, and an absolute path is the image\'s')
    .option('--output <HOSTDIR>', 'after the run, copy every volume to HOSTDIR/<volume path> (under --runtime-version all: HOSTDIR/<runtime>/<volume path>)')
    .option('--timeout <seconds>', 'kill the command (and fail) after this long')
    .option('--no-stdin', 'do not forward a piped stdin to the command (the command gets an empty stdin, as on a provider)')
    .option('--report', 'after the run, print overlay and volume usage')
    .option('-q, --quiet', "print only the command's own output (no gvmi-test warnings)")
    .option('--json', 'print one JSON result object instead of streaming output'), { compare: true });
  // `run img /bin/echo --timeout 5`: the options after the command's first word are the command's.
  optionsEndAtGuestCommand(run, 1);
  run.action(async (image: string, command: string[], flags: RunFlags) => {
    // Checked before anything boots: a typo fails at once.
    const choice = parseRuntimeChoice(flags.runtimeVersion);
    if (command.length === 0 && !flags.script) {
      throw new GvmiTestError('usage', 'run: no command given', { hint: 'gvmi-test run IMAGE -- /bin/ls -l /   (or --script ./job.sh)' });
    }
    const resolved = await imagePathFor(image, io, flags);
    const plan: RunPlan = {
      image: resolved.path, command, flags, io,
      timeoutMs: flags.timeout ? parsePositiveInt(flags.timeout, '--timeout') * 1000 : undefined,
      script: flags.script !== undefined ? await forcedScript(flags.script) : command[0] ? await hostScript(command[0]) : undefined,
      // As `docker run -i`: a pipe or a file is the command's stdin; a terminal is not read.
      stdin: flags.stdin !== false && !io.stdin.isTTY ? new StdinFeed(io.stdin, choice.kind === 'all') : undefined,
    };
    if (choice.kind === 'all') {
      const { runEveryRuntime } = await import('../run-every-runtime.js');
      await runEveryRuntime(plan, choice.profiles);
      return;
    }
    const outcome = await runUnder(plan, choice.profile);
    if (flags.json) writeLine(io.stdout, JSON.stringify(withEngineImage(outcome.record, resolved)));
    if (outcome.failure) {
      if (!flags.json) throw outcome.failure;
      // The record above has what the command printed before it was killed; the error line
      // still goes to stderr, and the status is the error's.
      throw new ExitStatus(reportError(outcome.failure, io));
    }
    if (outcome.run.status !== 0) throw new ExitStatus(outcome.run.status);
  });
}

/**
 * The CLI's stdin given to the guest command, chunk by chunk: the next chunk is read only once
 * the guest took the last (back-pressure). `replay` (run --runtime-version all): what one run
 * read is kept and given again to the next, so each runtime gets the same input, and the
 * stream itself is read only as far as some run asked.
 */
export class StdinFeed {
  private readonly seen: Buffer[] = [];
  private ended = false;

  constructor(private readonly stdin: NodeJS.ReadableStream, private readonly replay: boolean) {}

  /** Feeds `process` until stdin ends (then its stdin is closed) or stop() is called. */
  start(process: GuestProcess): { stop: () => void } {
    let stopped = false;
    let detach = (): void => {};
    const stop = (): void => {
      stopped = true;
      detach();
    };
    // The process may end before it reads everything: a refused write just ends the feeding.
    const pump = async (): Promise<void> => {
      for (const chunk of [...this.seen]) {
        if (stopped) return;
        await process.write(chunk);
      }
      if (stopped) return;
      if (this.ended) {
        await process.end();
        return;
      }
      await new Promise<void>((done, fail) => {
        const onData = (chunk: Buffer | string): void => {
          const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          if (this.replay) this.seen.push(data);
          this.stdin.pause();
          process.write(data).then(() => { if (!stopped) this.stdin.resume(); }, fail);
        };
        const onEnd = (): void => {
          this.ended = true;
          detach();
          process.end().then(done, fail);
        };
        detach = (): void => {
          this.stdin.off('data', onData);
          this.stdin.off('end', onEnd);
          this.stdin.off('error', fail);
          this.stdin.pause(); // nothing reads it now: it no longer holds the program open
          done();
        };
        this.stdin.on('data', onData);
        this.stdin.once('end', onEnd);
        this.stdin.once('error', fail);
        this.stdin.resume();
      });
    };
    pump().catch(stop);
    return { stop };
  }
}

/** One `run` invocation: what to run, and how to show it. */
export interface RunPlan {
  image: string;
  command: string[];
  flags: RunFlags;
  io: CliIo;
  timeoutMs: number | undefined;
  /** The host file to upload and run: --script, or the command's first word when it is a host file. */
  script: string | undefined;
  /** The CLI's stdin, when it is forwarded to the command. */
  stdin: StdinFeed | undefined;
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
  const imageVolumes = vm.info.metadata.volumes;
  const firstVolume = vm.volumes.find((v) => imageVolumes.includes(v.guestPath))?.guestPath ?? vm.volumes[0]?.guestPath;

  // No provider mounts a volume the image does not declare: said before anything runs.
  const extraVolumes = extraVolumeFinding(vm.volumes.map((v) => v.guestPath), imageVolumes);
  if (extraVolumes && warn) say(formatFinding(extraVolumes));

  const uploaded: string[] = [];
  for (const spec of flags.input) {
    const { host, guest } = parseInput(spec, firstVolume);
    await vm.upload(host, guest);
    uploaded.push(guest);
  }
  let argv = script ? [...command] : guestArgv(command);
  let scriptRecord: { host: string; guest: string } | undefined;
  if (script) {
    const given = flags.script ?? command[0]!;
    const args = flags.script !== undefined ? command : command.slice(1);
    if (!firstVolume) {
      throw new GvmiTestError('transfer.not-in-volume', `${given} is a host file, but the image has no volume to upload it to`, {
        hint: 'a requestor can only send files into volumes: add a VOLUME to the image (e.g. /golem/input)',
      });
    }
    const guestPath = `${firstVolume}/${basename(script)}`;
    await vm.upload(script, guestPath);
    uploaded.push(guestPath);
    scriptRecord = { host: script, guest: guestPath };
    if (warn) say(`uploaded ${printable(given)} → ${printable(guestPath)}`);
    const shebang = await startsWithShebang(script);
    if (shebang) await chmod(join(vm.volumes.find((v) => v.guestPath === firstVolume)!.hostPath, basename(script)), 0o755);
    argv = shebang ? [guestPath, ...args] : ['/bin/sh', guestPath, ...args];
  }

  // A baked file the run's own input replaced is not missed by the command.
  const replaced = await replacedByInputs(vm, vm.info.shadowed, uploaded);
  const shadowing = shadowingFinding(vm.info.shadowed.filter((p) => !replaced.has(p)));
  if (shadowing && warn) say(formatFinding(shadowing));
  const env = Object.fromEntries(flags.env.map((e) => parseKeyValue(e, '--env')));
  // A program that cannot start is not an error here: as on a provider it dies with status 9,
  // and the exec-failed finding says why.
  const process = await vm.spawn(argv, {
    env,
    ...(flags.workdir ? { cwd: flags.workdir } : {}),
    ...(timeoutMs ? { timeoutMs } : {}),
    ...(plan.stdin ? { stdin: 'pipe' as const } : {}),
    // Kept for --json, and under `all` to compare the runtimes' streams; else only streamed.
    maxBuffer: json || label ? 64 * 1024 * 1024 : 0,
  });
  const feeding = plan.stdin?.start(process);
  const prefixers: LinePrefixer[] = [];
  if (!json) {
    const forward = (stream: NodeJS.WritableStream) => {
      const prefixer = label ? new LinePrefixer(stream, `[${label}] `) : undefined;
      if (prefixer) prefixers.push(prefixer);
      // One 'drain' awaited at a time: chunks already on their way while output is paused, or
      // written to a closed pipe (which never drains), must not pile up listeners.
      let waiting = false;
      return (data: Buffer): void => {
        if (!(prefixer ? prefixer.write(data) : stream.write(data)) && !waiting) {
          waiting = true;
          vm.pauseOutput();
          stream.once('drain', () => {
            waiting = false;
            vm.resumeOutput();
          });
        }
      };
    };
    process.on('stdout', forward(io.stdout));
    process.on('stderr', forward(io.stderr));
  }
  const result = await process.wait().finally(() => feeding?.stop());
  for (const p of prefixers) p.finish();
  const findings: Finding[] = [...(extraVolumes ? [extraVolumes] : []), ...(shadowing ? [shadowing] : []), ...(await vm.diagnose(result))];
  if (warn) for (const f of findings.filter((x) => x !== shadowing && x !== extraVolumes)) say(formatFinding(f));
  const keep = flags.keep ?? false;
  const report = flags.report ? await usageReport(vm, { keep }) : undefined;
  if (report && !json) printReport(report, io, tag);

  if (flags.output) {
    // Volume paths were checked to be plain absolute paths (no `.`/`..`), and nothing below
    // the output directory is followed: each volume lands at <output>/<volume path>.
    const output = label ? join(resolve(flags.output), label) : resolve(flags.output);
    for (const v of vm.volumes) await vm.download(v.guestPath, join(output, v.guestPath), { root: output });
  }
  if (keep) {
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
    timedOut: result.timedOut,
    stdout: result.stdout,
    stderr: result.stderr,
    durationMs: result.durationMs,
    bootMs: vm.info.bootMs,
    snapshot: vm.info.snapshot.use,
    accelerator: vm.info.accelerator,
    ...(scriptRecord ? { script: scriptRecord } : {}),
    // A directory gvmi-test made is removed when the VM stops, unless --keep.
    volumes: vm.volumes.map((v) => ({ guest: v.guestPath, host: v.hostPath, kept: keep || !v.temporary })),
    findings,
    ...(report ? { report } : {}),
    ...(failure ? { error: { code: failure.code, message: failure.message, hint: failure.hint } } : {}),
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

/**
 * File names here are the guest's (it wrote them) and volume paths the image's: escaped. A
 * directory gvmi-test made is gone once the VM stops (unless --keep): its path is not printed.
 */
function printReport(report: UsageReport, io: CliIo, tag = ''): void {
  const o = report.overlay;
  writeLine(io.stderr, `gvmi-test: ${tag}overlay (RAM, outside volumes): ${formatBytes(o.usedBytes)} of ${formatBytes(o.totalBytes)} used (${((o.usedBytes / o.totalBytes) * 100).toFixed(0)}%)`);
  for (const f of report.largestOutsideVolumes) writeLine(io.stderr, `    ${formatBytes(f.bytes).padStart(9)}  ${printable(f.path)}`);
  for (const v of report.volumes) {
    const where = v.removedAtExit ? 'a temporary host directory, removed at exit; --keep keeps it' : `host ${printable(v.hostPath)}`;
    writeLine(io.stderr, `gvmi-test: ${tag}volume ${printable(v.guestPath)}: ${formatBytes(v.bytes)} in ${v.files} file(s) (${where})`);
  }
}
