/** The guest's serial console, captured to a file: what the host shows when a boot goes wrong. */
import { open, readFile, stat } from 'node:fs/promises';

export const FATAL_MARKER = 'GVMI-INIT-FATAL';

export async function readConsole(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

/** The last `lines` lines of the console (read from the end: the log can be large). */
export async function consoleTail(path: string, lines = 20): Promise<string> {
  const end = await readConsoleFrom(path, 0, 16 * 1024);
  return end.split('\n').slice(-lines - 1).join('\n');
}

export interface InitFailure {
  step: string;
  errno: number;
  line: string;
}

/**
 * `GVMI-INIT-FATAL <step> <errno> (<text>)`, printed by the init before it powers off. The serial
 * console ends lines with \r\n: the \r is not part of the line (it would show as "\r" in errors).
 */
export function parseInitFailure(consoleText: string): InitFailure | undefined {
  const m = new RegExp(`${FATAL_MARKER} (\\S+) (\\d+)[^\\r\\n]*`).exec(consoleText);
  return m ? { step: m[1]!, errno: Number(m[2]), line: m[0] } : undefined;
}

/** What a failed init step means for the image author. */
export function explainInitFailure(f: InitFailure): string {
  const ENOENT = 2;
  const ENOTDIR = 20;
  const ELOOP = 40;
  switch (f.step) {
    case 'image-proc':
    case 'image-sys': {
      const dir = f.step === 'image-proc' ? '/proc' : '/sys';
      if (f.errno === ENOENT || f.errno === ENOTDIR) {
        return `a provider's VM would stop here: the image has no ${dir} directory (its init mounts ${dir} without creating it); add \`RUN mkdir -p /proc /sys\` to the Dockerfile, or build the image with gvmkit-build or gvmi-test build, which add both as Docker does`;
      }
      return `the guest init could not mount ${dir} in the image`;
    }
    case 'hosts':
      if (f.errno === ENOENT) {
        return 'the guest init could not append to /etc/hosts — the image has no /etc directory; a provider fails to boot it the same way. Add /etc to the image.';
      }
      return 'the guest init could not append to /etc/hosts; a provider fails to boot it the same way';
    case 'resolv.conf':
      if (f.errno === ENOENT) {
        return 'the guest init could not write /etc/resolv.conf: it is a symlink into a directory the image does not have (or the image has no /etc directory); a provider writes through the link and fails to boot the same way. Make /etc/resolv.conf a regular file.';
      }
      return 'the guest init could not write /etc/resolv.conf; a provider fails to boot it the same way';
    case 'agent-dirs':
      if (f.errno === ENOTDIR || f.errno === ELOOP) {
        return 'a provider\'s VM would stop here: its init creates /var/tmp/guest_agent_private/fds at boot without following symlinks, and /var or /var/tmp in the image is a symlink or not a directory; make them real directories (e.g. RUN rm /var/tmp && mkdir -m 1777 /var/tmp)';
      }
      return 'the guest init could not create /var/tmp/guest_agent_private/fds in the image; a provider fails to boot it the same way';
    case 'mount-image':
      return 'the image\'s squashfs could not be mounted: the file is damaged or uses an unsupported compression';
    case 'deploy-volume':
      if (f.errno === ENOTDIR || f.errno === ELOOP) {
        return 'the guest init could not make the directory of a deploy volume (ram or storage) in the image: a component of its path is a symbolic link or a file there; a provider\'s VM stops at boot the same way. Choose a path whose directories are real ones in the image';
      }
      return 'the guest init could not mount a deploy volume (ram or storage); the console above says which (GVMI_TEST_KERNEL_APPEND=gvmi.debug=1 for more)';
    case 'deploy-mkfs':
      return 'the guest could not format a storage volume\'s disk as ext2 (its mke2fs failed or is missing from the initramfs: rebuild the runtime with make runtime)';
    default:
      return `the guest init failed at step "${f.step}"`;
  }
}

export const AGENT_STOP_MARKER = 'GVMI-AGENT-STOP';

/**
 * `GVMI-AGENT-STOP <reason> (request <id>, type <t>)`: the agent stopped the VM where upstream's
 * init dies (an unknown request type, a request type the runtime never implemented, an unknown
 * sub-message, the entrypoint exiting). Returns the reason and the rest of the line.
 */
export function parseAgentStop(consoleText: string): { reason: string; line: string } | undefined {
  const m = /GVMI-AGENT-STOP ([^(\r\n]*?)\s*(\([^\r\n]*\))?(?=\r?\n|$)/.exec(consoleText);
  return m ? { reason: m[1]!.trim(), line: m[0] } : undefined;
}

/** Kernel panics end QEMU at once (panic=-1, -no-reboot); the console says why. */
export function findKernelPanic(consoleText: string): string | undefined {
  return /Kernel panic[^\r\n]*/.exec(consoleText)?.[0];
}

/**
 * Lines where the guest kernel failed to read the image: squashfs decompression or read errors,
 * block I/O errors on its disk (virtio-blk, vda). A damaged .gvmi mounts fine (its superblock and
 * tables are intact) and fails only when a damaged block is read: a program dies with SIGBUS or
 * EIO and the console says why. Distinct lines, in order, at most `limit`.
 */
export function findImageErrors(consoleText: string, limit = 5): string[] {
  const found: string[] = [];
  for (const m of consoleText.matchAll(/^.*(?:SQUASHFS error|I\/O error[^\r\n]*\bdev vd|Buffer I\/O error on dev vd)[^\r\n]*/gm)) {
    const line = m[0].replace(/^\[[\s\d.]+\]\s*/, '').trim();
    if (!found.includes(line)) found.push(line);
    if (found.length >= limit) break;
  }
  return found;
}

/** The console's size now: where the output of what happens next starts. */
export async function consoleSize(path: string): Promise<number> {
  return stat(path).then((s) => s.size, () => 0);
}

/** The console from byte `offset` on (at most the last `maxBytes` of it). */
export async function readConsoleFrom(path: string, offset: number, maxBytes = 256 * 1024): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    const start = Math.max(offset, size - maxBytes, 0);
    if (start >= size) return '';
    const buffer = Buffer.alloc(size - start);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}
