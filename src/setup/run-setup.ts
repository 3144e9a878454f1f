/**
 * `gvmi-test setup`: makes this host able to run images with what npm cannot install. Missing
 * QEMU or squashfs-tools are installed through the system package manager as setup-plan.ts
 * decides (or their exact command is printed, and setup fails with setup.packages-missing), then
 * the guest runtime is found and booted (verify-runtime.ts). Every effect goes through
 * SetupEffects, so tests inject the facts and never run a package manager.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { GvmiTestError } from '../errors.js';
import type { RuntimeFiles } from '../qemu/runtime-files.js';
import { SYSTEM_NEEDS, type PackageManagerName, type SystemNeed } from './package-manager.js';
import { missingNeeds, planSetup, type SetupFacts } from './setup-plan.js';
import type { RuntimeProof } from './verify-runtime.js';

export interface SetupEffects {
  facts: SetupFacts;
  /** Asks a yes/no question on the terminal. */
  ask: (question: string) => Promise<boolean>;
  /** Runs one argv, its output shown to the user (never on stdout: --json keeps it clean). */
  runCommand: (argv: string[], env: Record<string, string>) => Promise<number>;
  /** Whether a binary is on PATH now (after an install). */
  hasNow: (binary: string) => boolean;
  findRuntime: () => Promise<RuntimeFiles>;
  proveRuntime: () => Promise<RuntimeProof>;
  /** A progress line for people (stderr). */
  say: (line: string) => void;
}

export interface SetupReport {
  ok: true;
  /** What was missing before setup ran (empty: nothing to install). */
  missing: SystemNeed[];
  installed?: { packageManager: PackageManagerName; packages: string[]; command: string };
  runtime: { source: string; kernel: string; kernelHash: string; initramfs: string; initHash: string };
  boot: RuntimeProof;
}

export function onPath(binary: string, path = process.env['PATH'] ?? ''): boolean {
  return path.split(delimiter).some((dir) => {
    if (!dir) return false;
    try {
      accessSync(join(dir, binary), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const describe = (needs: SystemNeed[]): string => needs.map((n) => SYSTEM_NEEDS[n].what).join(' and ');

export async function runSetup(effects: SetupEffects): Promise<SetupReport> {
  const plan = planSetup(effects.facts);
  let installed: SetupReport['installed'];
  if (plan.kind === 'print') {
    throw new GvmiTestError('setup.packages-missing', `${describe(plan.missing)} ${plan.missing.length > 1 ? 'are' : 'is'} missing, and gvmi-test did not install ${plan.missing.length > 1 ? 'them' : 'it'}: ${plan.reason}`, {
      hint: plan.command ?? `install ${describe(plan.missing)}, then run gvmi-test setup again`,
      details: { missing: plan.missing, reason: plan.reason, ...(plan.command ? { command: plan.command, packageManager: plan.packageManager, packages: plan.packages } : {}) },
    });
  }
  if (plan.kind === 'install') {
    const details = { missing: plan.missing, command: plan.command, packageManager: plan.packageManager, packages: plan.packages };
    if (plan.ask && !(await effects.ask(`gvmi-test needs ${describe(plan.missing)}. Run: ${plan.command} ? [y/N] `))) {
      throw new GvmiTestError('setup.packages-missing', `${describe(plan.missing)} not installed: you said no`, { hint: plan.command, details });
    }
    for (const argv of plan.run) {
      effects.say(`gvmi-test: running ${argv.join(' ')}`);
      const status = await effects.runCommand(argv, plan.env);
      if (status !== 0) {
        throw new GvmiTestError('setup.install-failed', `${argv.join(' ')} failed (exit status ${status})`, {
          hint: `its output is above; fix what it says, or run it yourself: ${plan.command}`, details: { ...details, failed: argv, status },
        });
      }
    }
    const still = missingNeeds(effects.hasNow);
    if (still.length > 0) {
      const binaries = still.flatMap((n) => SYSTEM_NEEDS[n].binaries);
      throw new GvmiTestError('setup.install-failed', `${plan.command} succeeded, but ${describe(still)} is still not on PATH`, {
        hint: `install ${describe(still)} another way, and make sure ${binaries.join(', ')} ${binaries.length > 1 ? 'are' : 'is'} on PATH`, details: { ...details, stillMissing: still },
      });
    }
    installed = { packageManager: plan.packageManager, packages: plan.packages, command: plan.command };
    effects.say(`gvmi-test: installed ${plan.packages.join(' ')}`);
  }
  const runtime = await effects.findRuntime();
  effects.say(`gvmi-test: booting the guest runtime (kernel ${runtime.kernelHash}, init ${runtime.initHash}) to check it works here…`);
  const boot = await effects.proveRuntime();
  return {
    ok: true,
    missing: plan.kind === 'install' ? plan.missing : [],
    ...(installed ? { installed } : {}),
    runtime: { source: runtime.source ?? 'checkout', kernel: runtime.kernel, kernelHash: runtime.kernelHash, initramfs: runtime.initramfs, initHash: runtime.initHash },
    boot,
  };
}
