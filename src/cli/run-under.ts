/**
 * One `run`: boot a VM under a runtime, send the inputs and the host script in, run the command
 * as a requestor would (src/requestor/host-script.ts), stream or collect its output, then the
 * findings, the usage report, --output, and the --json record. `run --runtime-version all`
 * (run-every-runtime.ts) calls it once per runtime.
 */
import { lstat } from 'node:fs/promises';
import { basename, join, posix, resolve } from 'node:path';
import { GvmiTestError } from '../errors.js';
import type { GuestProcess } from '../vm/guest-process.js';
import { execTimeoutError } from '../vm/process-runner.js';
import { shellStatus } from '../signals.js';
import type { StartedVm } from '../vm/started-vm.js';
import { exitCodeFor } from './exit-codes.js';
import { formatBytes, writeLine, type CliIo } from './io.js';
import { formatFinding, type Finding } from '../diagnostics/finding.js';
import { extraVolumeFinding, shadowingFinding } from '../diagnostics/run-findings.js';
import { usageReport, type UsageReport } from '../diagnostics/usage-report.js';
import { parseKeyValue } from './options.js';
import { guestArgv } from '../requestor/guest-command.js';
import { printable } from '../terminal-safe.js';
import type { RuntimeRun } from '../diagnostics/runtime-comparison.js';
import type { RuntimeProfile } from '../runtime-profile.js';
import { LinePrefixer } from './line-prefixer.js';
import { defaultVolume, uploadHostScript } from '../requestor/host-script.js';
import { startVmFromFlags, type VmFlags } from './vm-options.js';
import { networkRecordOf } from './vm-network-options.js';
import { outboundRefusedFindings } from '../diagnostics/outbound-findings.js';

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
  await using vm = await startVmFromFlags(plan.image, flags, runtime, io, { quiet: flags.quiet ?? false, tag });
  const imageVolumes = vm.info.metadata.volumes;
  const firstVolume = defaultVolume(vm);

  // No provider mounts a volume the image does not declare: said before anything runs.
  const extraVolumes = extraVolumeFinding(vm.volumes.map((v) => v.guestPath), imageVolumes);
  if (extraVolumes && warn) say(formatFinding(extraVolumes));

  const uploaded: string[] = [];
  for (const spec of flags.input) {
    const { host, guest } = parseInput(spec, firstVolume);
    await vm.upload(host, guest);
    uploaded.push(guest);
  }
  let argv = guestArgv(command);
  let scriptRecord: { host: string; guest: string } | undefined;
  if (script) {
    const given = flags.script ?? command[0]!;
    const uploadedScript = await uploadHostScript(vm, given, flags.script !== undefined ? command : command.slice(1));
    uploaded.push(uploadedScript.guest);
    scriptRecord = { host: uploadedScript.host, guest: uploadedScript.guest };
    if (warn) say(`uploaded ${printable(given)} → ${printable(uploadedScript.guest)}`);
    argv = uploadedScript.argv;
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
  // Outbound refusals were said on stderr as they happened (vm-network-options.ts): not again.
  const refused = outboundRefusedFindings(vm.outboundRefusals());
  const findings: Finding[] = [...(extraVolumes ? [extraVolumes] : []), ...(shadowing ? [shadowing] : []), ...(await vm.diagnose(result)), ...refused];
  if (warn) for (const f of findings.filter((x) => x !== shadowing && x !== extraVolumes && !refused.includes(x))) say(formatFinding(f));
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
  const failure = result.timedOut ? execTimeoutError(argv, `${flags.timeout} s`) : undefined;
  const status = failure ? exitCodeFor(failure.code) : shellStatus(result);
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
    ...networkRecordOf(vm),
    ...(flags.manifest !== undefined ? { outboundRefusals: vm.outboundRefusals() } : {}),
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
