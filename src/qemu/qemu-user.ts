/**
 * Who QEMU runs as. A provider runs QEMU as its own unprivileged user, so in a volume the guest
 * can't chown (EPERM) and only writes what that user may. Run as root, QEMU's 9p server would do
 * anything: so when gvmi-test itself is root, QEMU drops to an unprivileged user (-runas), by
 * default `nobody`; GVMI_TEST_QEMU_USER names another, `root` keeps root.
 */
import { readFile } from 'node:fs/promises';
import { GvmiTestError } from '../errors.js';

export interface QemuUser {
  name: string;
  uid: number;
  gid: number;
}

export function parsePasswd(text: string, name: string): QemuUser | undefined {
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 4) return { name, uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/** undefined: QEMU runs as the current user. */
export async function resolveQemuUser(): Promise<QemuUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const name = process.env['GVMI_TEST_QEMU_USER'] ?? 'nobody';
  if (name === 'root') return undefined;
  const user = parsePasswd(await readFile('/etc/passwd', 'utf8').catch(() => ''), name);
  if (!user) {
    throw new GvmiTestError('setup.tool-missing', `user ${name} (for running QEMU unprivileged) does not exist`, {
      hint: 'set GVMI_TEST_QEMU_USER to an existing unprivileged user, or to root to keep QEMU as root',
    });
  }
  return user;
}
