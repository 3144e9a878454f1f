/**
 * The system package managers `gvmi-test setup` knows, and the exact commands that install what
 * npm cannot: QEMU (qemu-system-x86_64) and squashfs-tools (mksquashfs, unsquashfs). Package
 * names differ per distribution; these are the ones that carry those binaries.
 */

export type PackageManagerName = 'apt' | 'dnf' | 'zypper' | 'pacman' | 'brew';

/** What gvmi-test needs from the system, each with the binaries that prove it is there. */
export const SYSTEM_NEEDS = {
  qemu: { binaries: ['qemu-system-x86_64'], what: 'QEMU (qemu-system-x86_64)' },
  squashfs: { binaries: ['mksquashfs', 'unsquashfs'], what: 'squashfs-tools (mksquashfs, unsquashfs)' },
} as const;

export type SystemNeed = keyof typeof SYSTEM_NEEDS;

interface PackageManager {
  name: PackageManagerName;
  /** The binary whose presence means this manager is the system's. */
  binary: string;
  packages: Record<SystemNeed, string>;
  /** argv lists run in order; without sudo. */
  commands: (packages: string[]) => string[][];
  /** Needs root (through sudo when not root). brew refuses to run as root. */
  asRoot: boolean;
  /** Environment the commands run with (never prompting). */
  env?: Record<string, string>;
}

/** In the order they are looked for: a Debian host with Homebrew installed uses apt. */
export const PACKAGE_MANAGERS: readonly PackageManager[] = [
  {
    name: 'apt', binary: 'apt-get', asRoot: true,
    packages: { qemu: 'qemu-system-x86', squashfs: 'squashfs-tools' },
    // The package lists of a fresh container are empty: update first.
    commands: (p) => [['apt-get', 'update'], ['apt-get', 'install', '-y', '--no-install-recommends', ...p]],
    env: { DEBIAN_FRONTEND: 'noninteractive' },
  },
  {
    name: 'dnf', binary: 'dnf', asRoot: true,
    packages: { qemu: 'qemu-system-x86-core', squashfs: 'squashfs-tools' },
    commands: (p) => [['dnf', 'install', '-y', ...p]],
  },
  {
    name: 'zypper', binary: 'zypper', asRoot: true,
    packages: { qemu: 'qemu-x86', squashfs: 'squashfs' },
    commands: (p) => [['zypper', '--non-interactive', 'install', ...p]],
  },
  {
    name: 'pacman', binary: 'pacman', asRoot: true,
    packages: { qemu: 'qemu-system-x86', squashfs: 'squashfs-tools' },
    commands: (p) => [['pacman', '-S', '--needed', '--noconfirm', ...p]],
  },
  {
    name: 'brew', binary: 'brew', asRoot: false,
    packages: { qemu: 'qemu', squashfs: 'squashfs' },
    commands: (p) => [['brew', 'install', ...p]],
  },
];

/** The first known package manager whose binary this host has. */
export function detectPackageManager(has: (binary: string) => boolean): PackageManager | undefined {
  return PACKAGE_MANAGERS.find((m) => has(m.binary));
}

export type { PackageManager };

/** A word as a POSIX shell reads it back: quoted only when it needs to be. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./=:@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** argv lists as one line to paste into a shell: `sudo apt-get update && sudo apt-get install …`. */
export function commandLine(argvs: readonly (readonly string[])[]): string {
  return argvs.map((argv) => argv.map(shellWord).join(' ')).join(' && ');
}
