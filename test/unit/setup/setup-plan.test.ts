/** setup's decisions from injected facts: which package manager, which command, run or print. */
import { describe, expect, it } from 'vitest';
import { planSetup, type SetupFacts } from '../../../src/setup/setup-plan.js';
import { commandLine } from '../../../src/setup/package-manager.js';

const TOOLS = ['qemu-system-x86_64', 'mksquashfs', 'unsquashfs'];

function facts(binaries: string[], overrides: Partial<SetupFacts> = {}): SetupFacts {
  const set = new Set(binaries);
  return { platform: 'linux', has: (b) => set.has(b), uid: 1000, interactive: true, yes: false, ...overrides };
}

describe('planSetup', () => {
  it('nothing to do when QEMU and both squashfs tools are there', () => {
    expect(planSetup(facts([...TOOLS, 'apt-get']))).toEqual({ kind: 'nothing-missing' });
  });

  it('apt, not root, sudo, a terminal, no --yes: asks, then runs update and install through sudo', () => {
    const plan = planSetup(facts(['apt-get', 'sudo', 'mksquashfs', 'unsquashfs']));
    expect(plan).toMatchObject({ kind: 'install', ask: true, packageManager: 'apt', missing: ['qemu'], packages: ['qemu-system-x86'] });
    if (plan.kind !== 'install') throw new Error('unreachable');
    expect(plan.run).toEqual([
      ['sudo', 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'update'],
      ['sudo', 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '--no-install-recommends', 'qemu-system-x86'],
    ]);
    expect(plan.command).toBe('sudo env DEBIAN_FRONTEND=noninteractive apt-get update && sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-x86');
    expect(plan.env).toEqual({});
  });

  it('--yes without a terminal (CI): runs without asking, sudo -n so that a password prompt fails instead of hanging', () => {
    const plan = planSetup(facts(['apt-get', 'sudo'], { interactive: false, yes: true }));
    expect(plan).toMatchObject({ kind: 'install', ask: false, missing: ['qemu', 'squashfs'], packages: ['qemu-system-x86', 'squashfs-tools'] });
    if (plan.kind !== 'install') throw new Error('unreachable');
    expect(plan.run.map((argv) => argv.slice(0, 2))).toEqual([['sudo', '-n'], ['sudo', '-n']]);
  });

  it('as root: no sudo, even where sudo exists; apt-get run directly with its environment', () => {
    const plan = planSetup(facts(['apt-get', 'sudo'], { uid: 0, yes: true }));
    if (plan.kind !== 'install') throw new Error(`expected install, got ${plan.kind}`);
    expect(plan.run).toEqual([['apt-get', 'update'], ['apt-get', 'install', '-y', '--no-install-recommends', 'qemu-system-x86', 'squashfs-tools']]);
    expect(plan.env).toEqual({ DEBIAN_FRONTEND: 'noninteractive' });
    expect(plan.command).toBe('apt-get update && apt-get install -y --no-install-recommends qemu-system-x86 squashfs-tools');
  });

  it('no terminal and no --yes: prints the command, says to use --yes', () => {
    const plan = planSetup(facts(['apt-get', 'sudo'], { interactive: false }));
    expect(plan).toMatchObject({
      kind: 'print',
      command: 'sudo apt-get update && sudo apt-get install -y --no-install-recommends qemu-system-x86 squashfs-tools',
    });
    if (plan.kind !== 'print') throw new Error('unreachable');
    expect(plan.reason).toMatch(/--yes/);
  });

  it('not root and no sudo: prints the command to run as root', () => {
    const plan = planSetup(facts(['apt-get', 'qemu-system-x86_64'], { yes: true }));
    expect(plan).toMatchObject({ kind: 'print', missing: ['squashfs'], command: 'sudo apt-get update && sudo apt-get install -y --no-install-recommends squashfs-tools' });
    if (plan.kind !== 'print') throw new Error('unreachable');
    expect(plan.reason).toMatch(/not root and there is no sudo/);
  });

  it.each([
    ['dnf', 'sudo dnf install -y qemu-system-x86-core squashfs-tools'],
    ['zypper', 'sudo zypper --non-interactive install qemu-x86 squashfs'],
    ['pacman', 'sudo pacman -S --needed --noconfirm qemu-system-x86 squashfs-tools'],
    ['brew', 'brew install qemu squashfs'],
  ])('%s: the exact command is printed, not run', (manager, command) => {
    const plan = planSetup(facts([manager, 'sudo'], { yes: true }));
    expect(plan).toMatchObject({ kind: 'print', packageManager: manager, command });
  });

  it('Debian with Homebrew installed too: apt is the one used', () => {
    expect(planSetup(facts(['brew', 'apt-get', 'sudo'], { yes: true }))).toMatchObject({ kind: 'install', packageManager: 'apt' });
  });

  it('no known package manager: says what to install, no command', () => {
    const plan = planSetup(facts(['sudo', 'mksquashfs', 'unsquashfs'], { yes: true }));
    expect(plan).toMatchObject({ kind: 'print', missing: ['qemu'] });
    if (plan.kind !== 'print') throw new Error('unreachable');
    expect(plan.command).toBeUndefined();
    expect(plan.reason).toMatch(/no known package manager .*QEMU \(qemu-system-x86_64\)/);
  });

  it('one squashfs tool missing counts as squashfs-tools missing', () => {
    expect(planSetup(facts(['qemu-system-x86_64', 'mksquashfs', 'apt-get'], { uid: 0, yes: true }))).toMatchObject({ kind: 'install', packages: ['squashfs-tools'] });
  });
});

describe('commandLine', () => {
  it('quotes only words a shell would split or expand', () => {
    expect(commandLine([['echo', 'a b', "it's", '$HOME', 'x=1']])).toBe(`echo 'a b' 'it'\\''s' '$HOME' x=1`);
  });
});
