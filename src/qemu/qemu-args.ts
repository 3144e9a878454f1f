/**
 * The QEMU command line, one small pure function per device group (unit-tested without QEMU).
 * Mirrors a provider's line (reference §3) on -M microvm: virtio-mmio devices given on the kernel
 * command line, no PCI, no firmware, no NIC.
 */
import type { Accelerator } from './accelerator.js';
import type { RuntimeProfile } from '../runtime-profile.js';

export interface VolumeDevice {
  tag: string;
  hostPath: string;
}

/**
 * A volume the guest's init mounts at boot (ya-runtime-vm 0.5's deploy volumes, reference §9):
 * `ram` is a tmpfs of `sizeBytes`; `storage` is the qcow2 disk `disk` (of `sizeBytes`), which the
 * guest formats as ext2 and mounts with `errors=`. `index` is upstream's vol_idx (vmrt.rs:136-168): it names the
 * kernel parameters and the disk's drive id and serial.
 */
export type BootVolume =
  | { index: number; kind: 'ram'; guestPath: string; sizeBytes: number }
  | { index: number; kind: 'storage'; guestPath: string; sizeBytes: number; errors: 'continue' | 'remount-ro' | 'panic'; disk: string };

export interface QemuSpec {
  accelerator: Accelerator;
  memoryMiB: number;
  cpus: number;
  kernel: string;
  initramfs: string;
  image: string;
  agentSocket: string;
  consoleLog: string;
  volumes: readonly VolumeDevice[];
  /** Deploy volumes the guest mounts at boot (runtime 0.5 only). */
  bootVolumes?: readonly BootVolume[];
  hostname: string;
  overlayMiB: number;
  /** The provider runtime reproduced (its guest behaviour differs per line: runtime-profile.ts). */
  runtime: RuntimeProfile;
  sandbox: boolean;
  /** Drop to this user after start-up (when gvmi-test runs as root). */
  runAs?: string;
  /** Under TCG: the host's TSC frequency, so the guest keeps time with the TSC (host-tsc.ts). */
  tscKhz?: number;
  /** The provider's NICs, VPN first (nicArgs); none by default. */
  nics?: readonly NicDevice[];
  /** The guest's RAM in a file rather than anonymous memory (snapshots: memoryFileArgs). */
  memoryFile?: MemoryFile;
}

/**
 * Guest RAM backed by a file. `shared`: the guest writes into the file (a VM booted to be saved:
 * its RAM is then left out of the migration stream and copied as a file). Not shared: the file is
 * mapped copy-on-write (a VM restored from a saved RAM file, which it never changes).
 */
export interface MemoryFile {
  path: string;
  shared: boolean;
}

/** The id of the memory backend (also the name of its RAM block in a migration stream). */
const MEMORY_BACKEND_ID = 'ram';

/** TCG's translation cache, MiB: the default (1 GiB with big guests) is wasted on short runs. */
export const TCG_TB_SIZE_MIB = 64;

/**
 * Under TCG, without ERMS/FSRM ("fast rep movsb"): with them the guest kernel copies and clears
 * memory with `rep movsb`/`rep stosb`, which TCG runs one byte per iteration, and glibc picks the
 * same for large copies. Measured here: in-guest copies ×4 and stdout to the host ×3.7 faster
 * without. Under KVM the real CPU runs them natively, so the guest keeps them.
 */
export const TCG_CPU = 'max,-erms,-fsrm';

export function machineArgs(a: Accelerator, memoryBackend = false): string[] {
  const accel = a.accel === 'kvm' ? ['-accel', 'kvm'] : ['-accel', `tcg,tb-size=${TCG_TB_SIZE_MIB}`];
  const machine = `microvm,acpi=off${memoryBackend ? `,memory-backend=${MEMORY_BACKEND_ID}` : ''}`;
  // -cpu max, not host: ya-runtime-vm #127, `-cpu host` panics nested guests.
  return ['-M', machine, ...accel, '-cpu', a.accel === 'kvm' ? 'max' : TCG_CPU];
}

export function resourceArgs(memoryMiB: number, cpus: number): string[] {
  return ['-m', `${memoryMiB}M`, '-smp', String(cpus)];
}

/** The memory backend the machine's RAM comes from (machineArgs names it): see MemoryFile. */
export function memoryFileArgs(memoryMiB: number, file: MemoryFile): string[] {
  return ['-object', `memory-backend-file,id=${MEMORY_BACKEND_ID},size=${memoryMiB}M,mem-path=${escapeOption(file.path)},share=${file.shared ? 'on' : 'off'}`];
}

export function baseArgs(sandbox: boolean, runAs?: string): string[] {
  // -runas needs set*id once, so the seccomp filter must allow it; QEMU is unprivileged after.
  const elevate = runAs ? 'allow' : 'deny';
  return [
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    ...(sandbox ? ['-sandbox', `on,obsolete=deny,elevateprivileges=${elevate},spawn=deny,resourcecontrol=deny`] : []),
    ...(runAs ? ['-runas', runAs] : []),
  ];
}

export function kernelCommandLine(spec: Pick<QemuSpec, 'hostname' | 'overlayMiB' | 'runtime' | 'tscKhz' | 'bootVolumes'> & { accelerator?: Accelerator }): string {
  return [
    'console=ttyS0',
    '8250.nr_uarts=1', // probing the 3 absent legacy UARTs costs ~0.1 s under emulation
    // Under TCG the delay-loop calibration takes ~0.2 s; delays use the TSC anyway (tsc=reliable).
    ...(spec.accelerator?.accel === 'tcg' ? ['lpj=1000000'] : []),
    // Under TCG the guest's TSC is the host's; told its rate, the kernel keeps time with it instead
    // of jiffies, which lose every tick a busy host delays (host-tsc.ts).
    ...(spec.accelerator?.accel === 'tcg' && spec.tscKhz ? [`tsc_early_khz=${spec.tscKhz}`] : []),
    'quiet',
    'panic=-1', // with -no-reboot a panic ends QEMU at once, and the host sees the console
    'reboot=t', // a triple-fault reboot: the quickest way out of a microvm
    'tsc=reliable',
    'no_timer_check',
    'i8042.noaux',
    'i8042.nokbd',
    ...bootVolumeParameters(spec.bootVolumes ?? []),
    // A 0.4 host passes no hostname (its init sets none: `(none)`); 0.5 passes `golem` or the deploy's.
    ...(spec.runtime === '0.4' ? [] : [`hostname=${spec.hostname}`]),
    `gvmi.runtime=${spec.runtime}`,
    `gvmi.overlay_mb=${spec.overlayMiB}`,
    // for debugging the guest, e.g. GVMI_TEST_KERNEL_APPEND=gvmi.debug=1 logs every request
    ...(process.env['GVMI_TEST_KERNEL_APPEND'] ? [process.env['GVMI_TEST_KERNEL_APPEND']] : []),
  ].join(' ');
}

/**
 * Upstream's host describes each deploy volume on the kernel command line, before `hostname=`
 * (vmrt.rs:151-166): `vol-N-path=` and `vol-N-errors=` for a storage disk, `vol-N-path=` and
 * `vol-N-size=` (bytes) for a ram volume. The guest's init reads them (and a process started
 * without Env sees them in init's environment, as on a provider).
 */
export function bootVolumeParameters(volumes: readonly BootVolume[]): string[] {
  return volumes.flatMap((v) => v.kind === 'storage'
    ? [`vol-${v.index}-path=${v.guestPath}`, `vol-${v.index}-errors=${v.errors}`]
    : [`vol-${v.index}-path=${v.guestPath}`, `vol-${v.index}-size=${v.sizeBytes}`]);
}

/**
 * Each storage volume's qcow2 disk, as upstream attaches it (vmrt.rs:143-150: format=qcow2,
 * media=disk, id and serial vol-N), on virtio-mmio. After the root disk, so the image stays vda;
 * the guest finds a storage disk by its serial.
 */
export function storageDiskArgs(volumes: readonly BootVolume[]): string[] {
  return volumes.flatMap((v) => v.kind !== 'storage' ? [] : [
    '-drive', `file=${escapeOption(v.disk)},format=qcow2,media=disk,id=vol-${v.index},if=none`,
    '-device', `virtio-blk-device,drive=vol-${v.index},serial=vol-${v.index}`,
  ]);
}

export function kernelArgs(spec: Pick<QemuSpec, 'kernel' | 'initramfs' | 'hostname' | 'overlayMiB' | 'accelerator' | 'runtime' | 'tscKhz' | 'bootVolumes'>): string[] {
  return ['-kernel', spec.kernel, '-initrd', spec.initramfs, '-append', kernelCommandLine(spec)];
}

export function consoleArgs(consoleLog: string): string[] {
  return ['-serial', `file:${consoleLog}`];
}

/** The whole .gvmi as a read-only raw disk: the kernel reads squashfs and ignores the trailer. */
export function rootDiskArgs(image: string): string[] {
  return [
    '-drive', `id=rootfs,file=${escapeOption(image)},format=raw,if=none,readonly=on,cache=unsafe`,
    '-device', 'virtio-blk-device,drive=rootfs',
  ];
}

/**
 * The agent channel as a provider's: QEMU listens on the socket (server=on,wait=off) and the host
 * connects when it likes, as the Rust runtime does; the guest waits while no host is connected.
 */
export function agentChannelArgs(socketPath: string): string[] {
  return [
    '-chardev', `socket,id=agent,path=${escapeOption(socketPath)},server=on,wait=off`,
    '-device', 'virtio-serial-device',
    '-device', 'virtserialport,chardev=agent,name=manager_port',
  ];
}

export function rngArgs(): string[] {
  return ['-device', 'virtio-rng-device'];
}

export function volumeArgs(volumes: readonly VolumeDevice[]): string[] {
  return volumes.flatMap((v) => [
    '-fsdev', `local,id=${v.tag},path=${escapeOption(v.hostPath)},security_model=none`,
    '-device', `virtio-9p-device,fsdev=${v.tag},mount_tag=${v.tag}`,
  ]);
}

/**
 * -M microvm without ACPI has 8 virtio-mmio transports (QEMU's VIRTIO_NUM_TRANSPORTS): a device
 * past them fails QEMU's start ("No 'virtio-bus' bus found"). A provider's PCI machine has room
 * for many more, so a deploy with many volumes fits there and not here.
 */
export const MICROVM_VIRTIO_SLOTS = 8;

/** The virtio devices of a command line: root disk, agent channel, rng, 9p volumes, storage disks, NICs. */
export function virtioDeviceCount(spec: { volumes: readonly unknown[]; bootVolumes?: readonly BootVolume[]; nics?: readonly unknown[] }): number {
  return 3 + spec.volumes.length + (spec.bootVolumes ?? []).filter((v) => v.kind === 'storage').length + (spec.nics ?? []).length;
}

/** QEMU option values separate on commas; a literal comma is written twice. */
export function escapeOption(value: string): string {
  return value.replaceAll(',', ',,');
}

export function buildQemuArgs(spec: QemuSpec): string[] {
  return [
    ...baseArgs(spec.sandbox, spec.runAs),
    ...machineArgs(spec.accelerator, spec.memoryFile !== undefined),
    ...resourceArgs(spec.memoryMiB, spec.cpus),
    ...(spec.memoryFile ? memoryFileArgs(spec.memoryMiB, spec.memoryFile) : []),
    ...kernelArgs(spec),
    ...consoleArgs(spec.consoleLog),
    ...rootDiskArgs(spec.image),
    ...storageDiskArgs(spec.bootVolumes ?? []),
    ...agentChannelArgs(spec.agentSocket),
    ...rngArgs(),
    ...volumeArgs(spec.volumes),
    ...nicArgs(spec.nics ?? []),
  ];
}

/**
 * A provider's NIC (ya-runtime-vm vmrt.rs configure_netdev_endpoint): QEMU's socket netdev sends
 * each Ethernet frame as one UDP datagram from `localPort` to `remotePort`, both on 127.0.0.1.
 * The guest names NICs in order: the VPN NIC must come first (eth0), the outbound one second
 * (eth1).
 */
export interface UdpNic {
  kind: 'udp';
  /** `vpn` or `inet`, as upstream's netdev ids. */
  id: 'vpn' | 'inet';
  mac: string;
  localPort: number;
  remotePort: number;
}

/**
 * A NIC whose frames go nowhere: a provider's VPN NIC when the requestor made no network (0.5
 * always attaches one), or 0.4's second NIC, a TCP listener no one connects to. A hub with no
 * other port drops every frame, and needs no host port.
 */
export interface DetachedNic {
  kind: 'detached';
  id: 'vpn' | 'inet';
  mac: string;
}

export type NicDevice = UdpNic | DetachedNic;

/**
 * The MAC QEMU gives a provider's NIC at start: 90:13 and a big-endian counter of the runtime
 * process's NICs from 1 (one VM per runtime process: the VPN NIC is ...:01, outbound ...:02).
 * The guest replaces it with 90:13:<IPv4 address> when its address is set (NET_CTL).
 */
export function providerNicMac(counter: number): string {
  const b = [(counter >>> 24) & 0xff, (counter >>> 16) & 0xff, (counter >>> 8) & 0xff, counter & 0xff];
  return ['90', '13', ...b.map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/** On -M microvm the virtio transport is MMIO: virtio-net-device where a provider has -pci. */
export function nicArgs(nics: readonly NicDevice[]): string[] {
  return nics.flatMap((nic, index) => {
    const netdev = nic.kind === 'udp'
      ? `socket,id=${nic.id},udp=127.0.0.1:${nic.remotePort},localaddr=127.0.0.1:${nic.localPort}`
      : `hubport,id=${nic.id},hubid=${index}`;
    return ['-netdev', netdev, '-device', `virtio-net-device,netdev=${nic.id},mac=${nic.mac}`];
  });
}
