/**
 * Matchers for command results and VMs. A failing matcher prints what the author needs to act:
 * the command, its status, both streams (trimmed) and, for VM-level matchers, the overlay usage
 * and the console tail.
 */
import type { ExecResult } from '../vm/guest-process.js';
import { vmOfResult } from '../vm/vm-like.js';
import type { VmLike } from '../vm/vm-like.js';
import { formatFinding } from '../diagnostics/finding.js';
import { mentionsEnospc } from '../diagnostics/run-findings.js';
import { printable, printableBlock } from '../terminal-safe.js';
import { formatBytes } from '../format-bytes.js';

const MAX_STREAM_CHARS = 1500;

export interface MatcherResult {
  pass: boolean;
  message: () => string;
}

function isExecResult(value: unknown): value is ExecResult {
  return typeof value === 'object' && value !== null && 'command' in value && 'exitCode' in value && 'stdout' in value;
}

function isVm(value: unknown): value is VmLike {
  return typeof value === 'object' && value !== null && 'exec' in value && 'overlayUsage' in value;
}

/** A guest stream quoted in a failure message: its lines kept, its control characters escaped. */
function trimStream(text: string): string {
  if (text === '') return '(empty)';
  const t = printableBlock(text.length > MAX_STREAM_CHARS ? `…${text.slice(-MAX_STREAM_CHARS)}` : text);
  return t.replace(/\n$/, '').split('\n').map((l, i) => (i === 0 ? l : `           ${l}`)).join('\n');
}

function status(r: ExecResult): string {
  return r.signal ? `killed by ${r.signal}` : `exit ${r.exitCode}`;
}

export function describeResult(r: ExecResult): string {
  return [
    `  command: ${printable(r.command.map((a) => (/[\s"'$]/.test(a) ? JSON.stringify(a) : a)).join(' '))}`,
    `  status:  ${status(r)} after ${r.durationMs} ms${r.timedOut ? ' (timed out)' : ''}`,
    `  stdout:  ${trimStream(r.stdout)}`,
    `  stderr:  ${trimStream(r.stderr)}`,
  ].join('\n');
}

async function describeVm(vm: VmLike | undefined): Promise<string> {
  if (!vm || vm.stopped) return '';
  const lines: string[] = [];
  try {
    const s = await vm.stats();
    lines.push(`  overlay: ${formatBytes(s.overlay.usedBytes, 1)} of ${formatBytes(s.overlay.totalBytes)} used outside volumes`);
    for (const f of (await vm.overlayUsage(5)).filter((e) => e.bytes > 0)) lines.push(`           ${formatBytes(f.bytes).padStart(9)}  ${printable(f.path)}`);
  } catch (e) {
    lines.push(`  overlay: unavailable (${printable((e as Error).message)})`);
  }
  const tail = (await vm.consoleTail(10)).trimEnd();
  lines.push(`  console (last lines):${tail ? `\n${tail.split(/\r?\n/).map((l) => `    ${printable(l)}`).join('\n')}` : ' (empty)'}`);
  return `\n${lines.join('\n')}`;
}

/**
 * On a failing result from a 0.5 VM whose image has an Env: the likeliest cause, since 0.5 runs
 * every command with an EMPTY environment (a value missing from stdout, `sh: x: not found`).
 */
function runtimeNote(r: ExecResult): string {
  const info = vmOfResult(r)?.info;
  if (info?.runtimeVersion !== '0.5' || info.metadata.env.length === 0) return '';
  const names = info.metadata.env.map((e) => printable(e.split('=', 1)[0]!)).join(', ');
  return `\n  runtime: 0.5, which runs every command with an EMPTY environment: the image Env (${names}) was not set (set it in the command, or use absolute paths)`;
}

function notAResult(name: string, received: unknown): MatcherResult {
  return { pass: false, message: () => `${name} expects the result of vm.exec(), got ${typeof received}` };
}

function streamMatches(actual: string, expected: string | RegExp): boolean {
  return typeof expected === 'string' ? actual.replace(/\n+$/, '') === expected.replace(/\n+$/, '') : expected.test(actual);
}

export const gvmiMatchers = {
  toSucceed(received: unknown): MatcherResult {
    if (!isExecResult(received)) return notAResult('toSucceed', received);
    const pass = received.exitCode === 0;
    return {
      pass,
      message: () => (pass
        ? `expected the command to fail, but it succeeded\n${describeResult(received)}`
        : `expected the command to succeed, but it ended with ${status(received)}\n${describeResult(received)}${runtimeNote(received)}`),
    };
  },

  toExitWith(received: unknown, code: number): MatcherResult {
    if (!isExecResult(received)) return notAResult('toExitWith', received);
    const pass = received.exitCode === code;
    return {
      pass,
      message: () => `expected the command ${pass ? 'not ' : ''}to exit with ${code}, it ended with ${status(received)}\n${describeResult(received)}${pass ? '' : runtimeNote(received)}`,
    };
  },

  toHaveStdout(received: unknown, expected: string | RegExp): MatcherResult {
    if (!isExecResult(received)) return notAResult('toHaveStdout', received);
    const pass = streamMatches(received.stdout, expected);
    return { pass, message: () => `expected stdout ${pass ? 'not ' : ''}to ${typeof expected === 'string' ? 'be' : 'match'} ${String(expected instanceof RegExp ? expected : JSON.stringify(expected))}\n${describeResult(received)}${pass ? '' : runtimeNote(received)}` };
  },

  toHaveStderr(received: unknown, expected: string | RegExp): MatcherResult {
    if (!isExecResult(received)) return notAResult('toHaveStderr', received);
    const pass = streamMatches(received.stderr, expected);
    return { pass, message: () => `expected stderr ${pass ? 'not ' : ''}to ${typeof expected === 'string' ? 'be' : 'match'} ${String(expected instanceof RegExp ? expected : JSON.stringify(expected))}\n${describeResult(received)}${pass ? '' : runtimeNote(received)}` };
  },

  /** `await expect(result).toFailWithENOSPC()`: the command failed for lack of space. */
  async toFailWithENOSPC(received: unknown): Promise<MatcherResult> {
    if (!isExecResult(received)) return notAResult('toFailWithENOSPC', received);
    const pass = received.exitCode !== 0 && mentionsEnospc(received);
    const vm = vmOfResult(received);
    const findings = vm && !vm.stopped ? await vm.diagnose(received).catch(() => []) : [];
    const explanation = findings.filter((f) => f.code === 'overlay-full').map((f) => `\n${formatFinding(f, 5)}`).join('');
    const vmPart = await describeVm(vm);
    return {
      pass,
      message: () => (pass
        ? `expected the command not to fail with ENOSPC, but it did${explanation}\n${describeResult(received)}${vmPart}`
        : `expected the command to fail with ENOSPC (no space left on device), but it ended with ${status(received)}\n${describeResult(received)}${vmPart}`),
    };
  },

  /** `await expect(vm).toHaveFile(path, content?)`: the file exists in the guest (with that content). */
  async toHaveFile(received: unknown, path: string, content?: string | RegExp): Promise<MatcherResult> {
    if (!isVm(received)) return { pass: false, message: () => `toHaveFile expects a started VM, got ${typeof received}` };
    const r = await received.exec(['/bin/sh', '-c', 'test -f "$1" && cat "$1"', 'sh', path]);
    const exists = r.exitCode === 0;
    const pass = exists && (content === undefined || streamMatches(r.stdout, content));
    const what = content === undefined ? `a file ${path}` : `${path} with content ${content instanceof RegExp ? String(content) : JSON.stringify(content)}`;
    const vmPart = pass ? '' : await describeVm(received);
    return {
      pass,
      message: () => (pass
        ? `expected the VM not to have ${what}`
        : `expected the VM to have ${what}, but ${exists ? `its content is ${printable(JSON.stringify(r.stdout.slice(0, 500)))}` : 'there is no such file'}${vmPart}`),
    };
  },

  /** `await expect(vm).toShadow(path)`: `path` is baked into the image but hidden by a volume. */
  async toShadow(received: unknown, path: string): Promise<MatcherResult> {
    if (!isVm(received)) return { pass: false, message: () => `toShadow expects a started VM, got ${typeof received}` };
    const baked = received.info.shadowed.includes(path);
    const visible = (await received.exec(['/bin/sh', '-c', 'test -e "$1"', 'sh', path])).exitCode === 0;
    const pass = baked && !visible;
    const volumes = received.volumes.map((v) => printable(v.guestPath)).join(', ');
    return {
      pass,
      message: () => (pass
        ? `expected ${path} not to be shadowed, but it is baked into the image and hidden by a volume (${volumes})`
        : `expected ${path} to be shadowed: ${baked ? 'it is baked under a volume' : 'it is not baked into the image under a volume'}${visible ? ', and it is visible in the VM' : ''}\n  volumes: ${volumes}\n  shadowed files: ${received.info.shadowed.map(printable).join(', ') || '(none)'}`),
    };
  },
};

export interface GvmiMatchers<R = unknown> {
  /** The command exited with status 0. */
  toSucceed(): R;
  /** The command exited with this status. */
  toExitWith(code: number): R;
  /** stdout equals the string (trailing newlines ignored) or matches the regex. */
  toHaveStdout(expected: string | RegExp): R;
  /** stderr equals the string (trailing newlines ignored) or matches the regex. */
  toHaveStderr(expected: string | RegExp): R;
  /** Await it: the command failed with "No space left on device". */
  toFailWithENOSPC(): Promise<R>;
  /** Await it, on a VM: the file exists in the guest, with this content if given. */
  toHaveFile(path: string, content?: string | RegExp): Promise<R>;
  /** Await it, on a VM: the path is baked into the image and hidden by a volume. */
  toShadow(path: string): Promise<R>;
}
