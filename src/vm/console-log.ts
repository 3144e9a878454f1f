/** The guest's serial console, captured to a file: what the host shows when a boot goes wrong. */
import { open, readFile } from 'node:fs/promises';

export const FATAL_MARKER = 'GVMI-INIT-FATAL';

export async function readConsole(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

/** The last `lines` lines of the console (read from the end: the log can be large). */
export async function consoleTail(path: string, lines = 20): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 16 * 1024);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer.toString('utf8').split('\n').slice(-lines - 1).join('\n');
  } finally {
    await handle.close();
  }
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
  switch (f.step) {
    case 'resolv.conf':
    case 'hosts':
      return 'the guest init could not write /etc/' + (f.step === 'hosts' ? 'hosts' : 'resolv.conf') + ' — the image has no /etc directory; a provider fails to boot it the same way. Add /etc to the image.';
    case 'mount-image':
      return 'the image\'s squashfs could not be mounted: the file is damaged or uses an unsupported compression';
    default:
      return `the guest init failed at step "${f.step}"`;
  }
}

/** Kernel panics end QEMU at once (panic=-1, -no-reboot); the console says why. */
export function findKernelPanic(consoleText: string): string | undefined {
  return /Kernel panic[^\r\n]*/.exec(consoleText)?.[0];
}
