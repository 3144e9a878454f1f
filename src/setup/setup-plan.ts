/**
 * What `gvmi-test setup` does about missing system packages, decided from facts alone (no
 * side effects, so every branch is unit-tested): nothing, run the package manager (after asking
 * on a terminal, at once with --yes), or print the exact command and say why it was not run.
 */
import { commandLine, detectPackageManager, SYSTEM_NEEDS, type PackageManagerName, type SystemNeed } from './package-manager.js';

export interface SetupFacts {
  platform: NodeJS.Platform;
  /** Whether a binary is on PATH. */
  has: (binary: string) => boolean;
  /** 0 is root. */
  uid: number;
  /** stdin and stdout are terminals: a question can be asked and answered. */
  interactive: boolean;
  /** --yes: install without asking. */
  yes: boolean;
}

export type SetupPlan =
  | { kind: 'nothing-missing' }
  | {
    kind: 'install';
    missing: SystemNeed[];
    packageManager: PackageManagerName;
    packages: string[];
    /** argv lists to run in order, sudo included where needed. */
    run: string[][];
    /** Environment to run them with (empty under sudo: it is in the argv). */
    env: Record<string, string>;
    /** The same as one shell line, as printed. */
    command: string;
    /** Ask before running (a terminal and no --yes). */
    ask: boolean;
  }
  | {
    kind: 'print';
    missing: SystemNeed[];
    packageManager?: PackageManagerName;
    packages?: string[];
    /** The command to run by hand, when a package manager is known. */
    command?: string;
    /** Why gvmi-test does not run it. */
    reason: string;
  };

/** Package managers gvmi-test runs itself; the others' commands are printed (not tested here). */
const RUNS_ITSELF: readonly PackageManagerName[] = ['apt'];

export function missingNeeds(has: (binary: string) => boolean): SystemNeed[] {
  return (Object.keys(SYSTEM_NEEDS) as SystemNeed[]).filter((need) => !SYSTEM_NEEDS[need].binaries.every(has));
}

export function planSetup(facts: SetupFacts): SetupPlan {
  const missing = missingNeeds(facts.has);
  if (missing.length === 0) return { kind: 'nothing-missing' };
  const manager = detectPackageManager(facts.has);
  if (!manager) {
    return {
      kind: 'print', missing,
      reason: `no known package manager (apt-get, dnf, zypper, pacman, brew) on PATH: install ${missing.map((n) => SYSTEM_NEEDS[n].what).join(' and ')} with your system's tools`,
    };
  }
  const packages = missing.map((need) => manager.packages[need]);
  const root = facts.uid === 0;
  const canSudo = facts.has('sudo');
  // What a person pastes: sudo where root is needed and they are not root.
  const printed = manager.commands(packages).map((argv) => (manager.asRoot && !root ? ['sudo', ...argv] : argv));
  const command = commandLine(printed);
  const base = { missing, packageManager: manager.name, packages, command };
  if (!RUNS_ITSELF.includes(manager.name)) {
    return { kind: 'print', ...base, reason: `gvmi-test runs only apt-get itself; run this ${manager.name} command` };
  }
  if (manager.asRoot && !root && !canSudo) {
    return { kind: 'print', ...base, reason: 'installing needs root: you are not root and there is no sudo; run this as root' };
  }
  if (!facts.yes && !facts.interactive) {
    return { kind: 'print', ...base, reason: 'not asked: no terminal to ask on; run again with --yes to let gvmi-test run it, or run it yourself' };
  }
  // Without a terminal sudo must not wait for a password nobody can type: -n fails instead.
  // sudo drops the environment, so under it the manager's settings go on the command line
  // (env K=V); run directly, they are given to the process.
  const env = manager.env ?? {};
  const sudo = manager.asRoot && !root ? [...(facts.interactive ? ['sudo'] : ['sudo', '-n']), ...(Object.keys(env).length ? ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`)] : [])] : [];
  const run = manager.commands(packages).map((argv) => [...sudo, ...argv]);
  return { kind: 'install', ...base, run, env: sudo.length ? {} : env, command: commandLine(run), ask: !facts.yes };
}
