/**
 * Planning a requestor's deploy volumes (ya-runtime-vm 0.5 deploy.rs, vmrt.rs): what each kind
 * becomes, what a provider refuses, and the 0.4 profile refusing them all.
 */
import { describe, expect, it } from 'vitest';
import { planDeployVolumes } from '../../../src/vm/deploy-volumes.js';
import { bootVolumeParameters, buildQemuArgs, kernelCommandLine, storageDiskArgs, type BootVolume } from '../../../src/qemu/qemu-args.js';
import { GvmiTestError } from '../../../src/errors.js';

const IMAGE = ['/golem/input', '/golem/output'];

function refusal(f: () => unknown): GvmiTestError {
  try {
    f();
  } catch (error) {
    if (error instanceof GvmiTestError) return error;
    throw error;
  }
  throw new Error('expected a GvmiTestError');
}

describe('planDeployVolumes under 0.5', () => {
  it('numbers ram and storage volumes in path order, in bytes, storage errors defaulting to continue', () => {
    const plan = planDeployVolumes('0.5', IMAGE, {
      '/store': { kind: 'storage', sizeMiB: 32 },
      '/data': { kind: 'ram', sizeMiB: 64 },
      '/': { kind: 'ram', sizeMiB: 256 },
    });
    expect(plan.bootVolumes).toEqual([
      { index: 0, kind: 'ram', guestPath: '/', sizeBytes: 256 * 1024 * 1024 },
      { index: 1, kind: 'ram', guestPath: '/data', sizeBytes: 64 * 1024 * 1024 },
      { index: 2, kind: 'storage', guestPath: '/store', sizeBytes: 32 * 1024 * 1024, errors: 'continue', disk: '' },
    ]);
    expect(plan.extraHostPaths).toEqual([]);
    expect(plan.info.map((i) => `${i.kind} ${i.guestPath}`)).toEqual(['ram /', 'ram /data', 'storage /store']);
  });

  it('a host volume at an undeclared path is added; at a declared one it is the image\'s', () => {
    const plan = planDeployVolumes('0.5', IMAGE, { '/cache/': { kind: 'host' }, '/golem/input': { kind: 'host' } });
    expect(plan.extraHostPaths).toEqual(['/cache']);
    expect(plan.bootVolumes).toEqual([]);
  });

  it('a binding where the image declares no VOLUME is a host volume of the deploy', () => {
    expect(planDeployVolumes('0.5', IMAGE, {}, ['/data']).extraHostPaths).toEqual(['/data']);
  });

  it('a ram or storage volume at an image volume\'s path replaces its 9p export', () => {
    const plan = planDeployVolumes('0.5', IMAGE, { '/golem/output': { kind: 'storage', sizeMiB: 8, errors: 'remount-ro' } });
    expect(plan.replacedImageVolumes).toEqual(['/golem/output']);
  });

  it.each([
    ['a host volume at /', { '/': { kind: 'host' } }, /host volume at \/ .*Volume of type `host` specified for path="\/"/],
    ['a size of 0', { '/data': { kind: 'ram', sizeMiB: 0 } }, /at least 1/],
    ['a fractional size', { '/data': { kind: 'ram', sizeMiB: 1.5 } }, /whole number/],
    ['an unknown errors mode', { '/s': { kind: 'storage', sizeMiB: 8, errors: 'ignore' } }, /errors=ignore is not one of continue, remount-ro, panic/],
    ['a relative path', { data: { kind: 'ram', sizeMiB: 8 } }, /absolute/],
    ['a path with a space', { '/my data': { kind: 'ram', sizeMiB: 8 } }, /kernel command line/],
    ['a .. component', { '/a/../b': { kind: 'ram', sizeMiB: 8 } }, /volume/],
    ['an unknown kind', { '/x': { kind: 'nfs' } }, /unknown kind "nfs"/],
  ] as const)('refuses %s (deploy.bad-volume)', (_label, deploy, message) => {
    const error = refusal(() => planDeployVolumes('0.5', IMAGE, deploy as never));
    expect(error.code).toBe('deploy.bad-volume');
    expect(error.message).toMatch(message);
  });

  it('refuses a path that is both a ram volume and a binding', () => {
    expect(refusal(() => planDeployVolumes('0.5', IMAGE, { '/data': { kind: 'ram', sizeMiB: 8 } }, ['/data'])).code).toBe('deploy.bad-volume');
  });

  it('refuses more than the kernel command line carries', () => {
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`/volume-with-a-long-name-${i}`, { kind: 'ram' as const, sizeMiB: 1 }]));
    expect(refusal(() => planDeployVolumes('0.5', IMAGE, many)).message).toMatch(/kernel command line/);
  });
});

describe('planDeployVolumes under 0.4', () => {
  it.each([
    ['host', { '/cache': { kind: 'host' } }],
    ['ram', { '/data': { kind: 'ram', sizeMiB: 8 } }],
    ['ram at /', { '/': { kind: 'ram', sizeMiB: 64 } }],
    ['storage', { '/store': { kind: 'storage', sizeMiB: 8 } }],
  ] as const)('refuses a %s volume with the reason (deploy.unsupported-by-runtime)', (_kind, deploy) => {
    const error = refusal(() => planDeployVolumes('0.4', IMAGE, deploy));
    expect(error.code).toBe('deploy.unsupported-by-runtime');
    expect(error.message).toMatch(/ya-runtime-vm 0\.4 has no deploy volumes: a VM there has exactly the image's VOLUMEs/);
    expect(error.hint).toMatch(/--runtime-version 0\.5/);
  });

  it('refuses a binding where the image declares no VOLUME, and takes one where it does', () => {
    const error = refusal(() => planDeployVolumes('0.4', IMAGE, {}, ['/data']));
    expect(error.code).toBe('deploy.unsupported-by-runtime');
    expect(error.message).toContain('/data');
    expect(error.hint).toContain('/golem/input, /golem/output');
    expect(planDeployVolumes('0.4', IMAGE, {}, ['/golem/output/']).extraHostPaths).toEqual([]);
  });
});

describe('QEMU arguments for boot volumes', () => {
  const volumes: BootVolume[] = [
    { index: 0, kind: 'ram', guestPath: '/', sizeBytes: 67108864 },
    { index: 1, kind: 'storage', guestPath: '/store', sizeBytes: 8388608, errors: 'remount-ro', disk: '/tmp/x,y/vol-1.qcow2' },
  ];

  it('describes them on the kernel command line as upstream\'s host does, before hostname=', () => {
    expect(bootVolumeParameters(volumes)).toEqual(['vol-0-path=/', 'vol-0-size=67108864', 'vol-1-path=/store', 'vol-1-errors=remount-ro']);
    const line = kernelCommandLine({ hostname: 'golem', overlayMiB: 128, runtime: '0.5', bootVolumes: volumes });
    expect(line).toContain('vol-0-path=/ vol-0-size=67108864 vol-1-path=/store vol-1-errors=remount-ro hostname=golem');
    expect(kernelCommandLine({ hostname: 'golem', overlayMiB: 128, runtime: '0.5' })).not.toContain('vol-');
  });

  it('attaches each storage disk as qcow2 with id and serial vol-N, after the root disk', () => {
    expect(storageDiskArgs(volumes)).toEqual([
      '-drive', 'file=/tmp/x,,y/vol-1.qcow2,format=qcow2,media=disk,id=vol-1,if=none',
      '-device', 'virtio-blk-device,drive=vol-1,serial=vol-1',
    ]);
    const args = buildQemuArgs({
      accelerator: { accel: 'tcg', reason: 'test' }, memoryMiB: 512, cpus: 1, kernel: 'k', initramfs: 'i', image: 'img.gvmi',
      agentSocket: 'a.sock', consoleLog: 'c.log', volumes: [], bootVolumes: volumes, hostname: 'golem', overlayMiB: 128,
      runtime: '0.5', sandbox: false,
    } as never);
    const drives = args.flatMap((a, i) => (args[i - 1] === '-drive' ? [a] : []));
    expect(drives[0]).toMatch(/^id=rootfs,/);
    expect(drives[1]).toMatch(/id=vol-1/);
  });
});
