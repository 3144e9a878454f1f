/** What setup does with a plan: asks, runs, rechecks, fails with stable codes. Nothing real is installed. */
import { describe, expect, it } from 'vitest';
import { GvmiTestError } from '../../../src/errors.js';
import { runSetup, type SetupEffects } from '../../../src/setup/run-setup.js';

const RUNTIME = { kernel: '/c/vmlinux', initramfs: '/c/initramfs.cpio', kernelHash: 'k'.repeat(16), initHash: 'i'.repeat(16), runtimeHash: 'k-i', source: 'package' as const };
const PROOF = { accelerator: 'tcg', bootMs: 3000, guestUptimeMs: 2900, overlayTotalBytes: 128 << 20 };

function effects(binaries: string[], overrides: Partial<SetupEffects['facts']> = {}, answer = true, status = 0) {
  const present = new Set(binaries);
  const ran: string[][] = [];
  const asked: string[] = [];
  const e: SetupEffects = {
    facts: { platform: 'linux', has: (b) => present.has(b), uid: 1000, interactive: true, yes: false, ...overrides },
    ask: async (q) => { asked.push(q); return answer; },
    // A successful install puts the tools on PATH.
    runCommand: async (argv) => {
      ran.push(argv);
      if (status === 0 && argv.includes('install')) for (const b of ['qemu-system-x86_64', 'mksquashfs', 'unsquashfs']) present.add(b);
      return status;
    },
    hasNow: (b) => present.has(b),
    findRuntime: async () => RUNTIME,
    proveRuntime: async () => PROOF,
    say: () => {},
  };
  return { e, ran, asked };
}

async function failure(p: Promise<unknown>): Promise<GvmiTestError> {
  const error = await p.then(() => undefined, (x: unknown) => x);
  if (!(error instanceof GvmiTestError)) throw new Error(`expected a GvmiTestError, got ${String(error)}`);
  return error;
}

describe('runSetup', () => {
  it('nothing missing: runs nothing, boots the runtime, reports it', async () => {
    const { e, ran, asked } = effects(['qemu-system-x86_64', 'mksquashfs', 'unsquashfs', 'apt-get', 'sudo']);
    const report = await runSetup(e);
    expect(ran).toEqual([]);
    expect(asked).toEqual([]);
    expect(report).toEqual({ ok: true, missing: [], runtime: { source: 'package', kernel: RUNTIME.kernel, kernelHash: RUNTIME.kernelHash, initramfs: RUNTIME.initramfs, initHash: RUNTIME.initHash }, boot: PROOF });
  });

  it('on a terminal: asks with the command, runs it when told yes, reports what it installed', async () => {
    const { e, ran, asked } = effects(['apt-get', 'sudo']);
    const report = await runSetup(e);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toContain('sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-x86 squashfs-tools');
    expect(ran.map((a) => a.at(-1))).toEqual(['update', 'squashfs-tools']);
    expect(report.installed).toMatchObject({ packageManager: 'apt', packages: ['qemu-system-x86', 'squashfs-tools'] });
    expect(report.missing).toEqual(['qemu', 'squashfs']);
  });

  it('told no: runs nothing, setup.packages-missing with the command as the hint', async () => {
    const { e, ran } = effects(['apt-get', 'sudo'], {}, false);
    const error = await failure(runSetup(e));
    expect(ran).toEqual([]);
    expect(error.code).toBe('setup.packages-missing');
    expect(error.hint).toContain('apt-get install');
  });

  it('--yes: no question', async () => {
    const { e, asked, ran } = effects(['apt-get', 'sudo'], { interactive: false, yes: true });
    await runSetup(e);
    expect(asked).toEqual([]);
    expect(ran).toHaveLength(2);
  });

  it('no terminal, no --yes: setup.packages-missing naming --yes, the exact command in hint and details', async () => {
    const { e, ran } = effects(['apt-get', 'sudo'], { interactive: false });
    const error = await failure(runSetup(e));
    expect(ran).toEqual([]);
    expect(error.code).toBe('setup.packages-missing');
    expect(error.message).toMatch(/--yes/);
    expect(error.hint).toBe('sudo apt-get update && sudo apt-get install -y --no-install-recommends qemu-system-x86 squashfs-tools');
    expect(error.details?.['command']).toBe(error.hint);
  });

  it('the package manager fails: setup.install-failed with its exit status, the runtime not booted', async () => {
    const { e } = effects(['apt-get'], { uid: 0, yes: true }, true, 100);
    let booted = false;
    e.proveRuntime = async () => { booted = true; return PROOF; };
    const error = await failure(runSetup(e));
    expect(error.code).toBe('setup.install-failed');
    expect(error.message).toMatch(/apt-get update failed \(exit status 100\)/);
    expect(booted).toBe(false);
  });

  it('installed but still not on PATH: setup.install-failed naming what is missing', async () => {
    const { e } = effects(['apt-get'], { uid: 0, yes: true });
    e.runCommand = async () => 0;
    const error = await failure(runSetup(e));
    expect(error.code).toBe('setup.install-failed');
    expect(error.message).toMatch(/still not on PATH/);
  });

  it('a runtime that does not boot fails setup with its own error', async () => {
    const { e } = effects(['qemu-system-x86_64', 'mksquashfs', 'unsquashfs']);
    e.proveRuntime = async () => { throw new GvmiTestError('vm.boot-failed', 'the guest did not start'); };
    expect((await failure(runSetup(e))).code).toBe('vm.boot-failed');
  });
});
