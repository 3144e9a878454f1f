import { describe, expect, it } from 'vitest';
import { chooseAccelerator, kvmProblem, type HostFacts } from '../../../src/qemu/accelerator.js';
import { agentChannelArgs, buildQemuArgs, escapeOption, kernelCommandLine, machineArgs, memoryFileArgs, rootDiskArgs, volumeArgs } from '../../../src/qemu/qemu-args.js';
import { isGvmiTestError } from '../../../src/errors.js';

const hardware: HostFacts = { modules: ['kvm', 'kvm_intel'], cpuFlags: ['fpu', 'vmx'], devKvm: 'read-write' };
const pvm: HostFacts = { modules: ['kvm', 'kvm_pvm'], cpuFlags: ['fpu', 'hypervisor'], devKvm: 'read-write' };

describe('accelerator choice', () => {
  it.each([
    ['hardware KVM', hardware, 'auto', 'kvm', /hardware/],
    ['para-virtualised /dev/kvm (these machines)', pvm, 'auto', 'tcg', /^TCG \(.*para-virtualised/],
    ['no /dev/kvm', { ...hardware, devKvm: 'missing' }, 'auto', 'tcg', /does not exist/],
    ['unreadable /dev/kvm', { ...hardware, devKvm: 'unreadable' }, 'auto', 'tcg', /kvm group/],
    ['no vmx/svm flag', { modules: ['kvm'], cpuFlags: ['fpu'], devKvm: 'read-write' }, 'auto', 'tcg', /vmx\/svm/],
    ['tcg forced', hardware, 'tcg', 'tcg', /requested/],
    ['kvm forced where module facts are unreadable', { modules: [], cpuFlags: ['vmx'], devKvm: 'read-write' }, 'kvm', 'kvm', /requested/],
  ] as const)('%s', (_label, facts, requested, accel, reason) => {
    const choice = chooseAccelerator(requested, facts);
    expect(choice.accel).toBe(accel);
    expect(choice.reason).toMatch(reason);
  });

  it('refuses forced KVM on a para-virtualised /dev/kvm (it would hang the guest)', () => {
    let error: unknown;
    try {
      chooseAccelerator('kvm', pvm);
    } catch (e) {
      error = e;
    }
    expect(isGvmiTestError(error, 'setup.kvm-unusable')).toBe(true);
  });

  it('hardware KVM has no problem', () => {
    expect(kvmProblem(hardware)).toBeUndefined();
  });
});

describe('QEMU arguments', () => {
  it('machine: microvm without ACPI; TCG gets a bounded translation cache; never -cpu host', () => {
    expect(machineArgs({ accel: 'tcg', reason: '' })).toEqual(['-M', 'microvm,acpi=off', '-accel', 'tcg,tb-size=64', '-cpu', 'max,-erms,-fsrm']);
    // Under KVM the host CPU runs rep movsb natively: the guest keeps ERMS/FSRM.
    expect(machineArgs({ accel: 'kvm', reason: '' })).toEqual(['-M', 'microvm,acpi=off', '-accel', 'kvm', '-cpu', 'max']);
  });

  it('guest RAM in a file: the machine takes it from a named backend, shared to be saved, copy-on-write to be restored', () => {
    expect(machineArgs({ accel: 'tcg', reason: '' }, true)[1]).toBe('microvm,acpi=off,memory-backend=ram');
    expect(memoryFileArgs(512, { path: '/s/k.1,2.ram', shared: false })).toEqual(['-object', 'memory-backend-file,id=ram,size=512M,mem-path=/s/k.1,,2.ram,share=off']);
    expect(memoryFileArgs(256, { path: '/dev/shm/x/ram-1', shared: true })).toEqual(['-object', 'memory-backend-file,id=ram,size=256M,mem-path=/dev/shm/x/ram-1,share=on']);
  });

  it('the image is a read-only raw virtio disk', () => {
    expect(rootDiskArgs('/img/a.gvmi')).toEqual(['-drive', 'id=rootfs,file=/img/a.gvmi,format=raw,if=none,readonly=on,cache=unsafe', '-device', 'virtio-blk-device,drive=rootfs']);
  });

  it('one 9p device per volume with security_model=none and tags mnt<k>', () => {
    expect(volumeArgs([{ tag: 'mnt0', hostPath: '/h/in' }, { tag: 'mnt1', hostPath: '/h/out' }])).toEqual([
      '-fsdev', 'local,id=mnt0,path=/h/in,security_model=none', '-device', 'virtio-9p-device,fsdev=mnt0,mount_tag=mnt0',
      '-fsdev', 'local,id=mnt1,path=/h/out,security_model=none', '-device', 'virtio-9p-device,fsdev=mnt1,mount_tag=mnt1',
    ]);
  });

  it('agent channel: virtio-serial port manager_port on a unix socket QEMU listens on (as on a provider)', () => {
    expect(agentChannelArgs('/t/agent.sock')).toEqual(['-chardev', 'socket,id=agent,path=/t/agent.sock,server=on,wait=off', '-device', 'virtio-serial-device', '-device', 'virtserialport,chardev=agent,name=manager_port']);
  });

  it('commas in paths are doubled so QEMU does not split them', () => {
    expect(escapeOption('/a,b/c.gvmi')).toBe('/a,,b/c.gvmi');
    expect(rootDiskArgs('/a,b.gvmi')[1]).toContain('file=/a,,b.gvmi,');
  });

  it('kernel command line carries the runtime profile, the overlay size, and the hostname as each runtime passes it', () => {
    const line = kernelCommandLine({ hostname: 'golem', overlayMiB: 128, runtime: '0.5' });
    expect(line).toContain('hostname=golem');
    expect(line).toContain('gvmi.runtime=0.5');
    expect(line).toContain('gvmi.overlay_mb=128');
    expect(line).toContain('panic=-1');
    // A 0.4 host passes no hostname: the guest keeps the kernel's "(none)".
    expect(kernelCommandLine({ hostname: 'golem', overlayMiB: 128, runtime: '0.4' })).not.toContain('hostname=');
  });

  it("a TCG guest is told the host's TSC frequency, so it keeps time with the TSC, not jiffies; a KVM guest has kvm-clock", () => {
    const tcg = { accel: 'tcg', reason: '' } as const;
    expect(kernelCommandLine({ hostname: 'golem', overlayMiB: 128, runtime: '0.4', accelerator: tcg, tscKhz: 2596132 })).toContain(' tsc_early_khz=2596132 ');
    expect(kernelCommandLine({ hostname: 'golem', overlayMiB: 128, runtime: '0.4', accelerator: tcg })).not.toContain('tsc_early_khz');
    expect(kernelCommandLine({ hostname: 'golem', overlayMiB: 128, runtime: '0.4', accelerator: { accel: 'kvm', reason: '' }, tscKhz: 2596132 })).not.toContain('tsc_early_khz');
  });

  it('the whole line: no NIC, memory and cpus as asked, sandbox when supported', () => {
    const args = buildQemuArgs({
      accelerator: { accel: 'tcg', reason: '' }, memoryMiB: 768, cpus: 2, kernel: 'k', initramfs: 'i', image: 'img',
      agentSocket: 's', consoleLog: 'c', volumes: [], hostname: 'golem', overlayMiB: 128, runtime: '0.4', sandbox: true,
    });
    expect(args.join(' ')).toContain('-m 768M -smp 2');
    expect(args).toContain('-nodefaults');
    expect(args.join(' ')).not.toMatch(/-net|-nic|netdev/);
    expect(args[args.indexOf('-sandbox') + 1]).toMatch(/^on,/);
  });
});
