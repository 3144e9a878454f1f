/**
 * The host's TSC frequency, for a TCG guest's kernel command line (`tsc_early_khz=`). Under TCG
 * the guest's TSC is the host's, but the guest kernel cannot measure its rate (no HPET or PM
 * timer on -M microvm, and its PIT calibration fails whenever the vCPU is not scheduled on time):
 * it then keeps time with jiffies, in 10 ms steps, losing every tick the vCPU misses, so on a
 * loaded host its clock falls behind. Told the rate, it keeps time with the TSC.
 *
 * Measured by runtime/host/tsc_khz.c (x86-64 hosts; built by `make runtime`) and remembered per
 * host boot: the value is on the kernel command line, so it is part of a snapshot's key and must
 * not change from one run to the next. Undefined when there is no tool or no constant-rate TSC.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { memoPath, readMemo, writeMemo } from '../memo.js';

const measured = new Map<string, Promise<number | undefined>>();

export function hostTscKhz(tool: string | undefined): Promise<number | undefined> {
  if (!tool) return Promise.resolve(undefined);
  let answer = measured.get(tool);
  if (!answer) {
    answer = measure(tool);
    measured.set(tool, answer);
  }
  return answer;
}

async function measure(tool: string): Promise<number | undefined> {
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
  const memo = bootId ? memoPath('host-tsc', [bootId, tool]) : undefined;
  const remembered = memo ? await readMemo(memo) : undefined;
  if (remembered && /^[1-9]\d{3,8}$/.test(remembered)) return Number(remembered);
  const out = await new Promise<string>((resolve) => {
    execFile(tool, [], { timeout: 10_000 }, (error, stdout) => resolve(error ? '' : String(stdout).trim()));
  });
  // Not remembered when it failed: a host too busy to tell now may tell next time.
  if (!/^[1-9]\d{3,8}$/.test(out)) return undefined;
  if (memo) await writeMemo(memo, out);
  return Number(out);
}
