/**
 * A directory bound with `volumes` (`--volume GUEST=HOSTDIR`) is QEMU's user's while the VM runs
 * (gvmi-test as root) and its owner's again once the VM stops, with everything the guest wrote.
 */
import { chmod, chown, lstat, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { startVm } from '../../src/index.js';

const CALLER = { uid: 1234, gid: 1235 };
let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.runIf(process.getuid?.() === 0)('a bound volume directory', () => {
  it('goes back to its owner, with the guest\'s files, when the VM stops', async () => {
    dir = await mkdtemp(join(tmpdir(), 'gvmi-bound-'));
    await chmod(dir, 0o755);
    await chown(dir, CALLER.uid, CALLER.gid);
    const vm = await startVm({ image: inject('tinyImage'), volumes: { '/golem/output': dir } });
    try {
      expect((await stat(dir)).uid).not.toBe(CALLER.uid); // QEMU's user's while the VM runs
      const r = await vm.exec([
        'cd /golem/output',
        'echo r > result.txt',
        'mkdir -p sub/deep && echo f > sub/deep/f',
        'echo "#!/bin/sh" > setuid && chmod 4755 setuid',
        'ln -s /etc/passwd link',
        'chmod 777 /golem/output',
      ].join(' && '));
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
    } finally {
      await vm.stop();
    }
    const st = await stat(dir);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([CALLER.uid, CALLER.gid, 0o755]);
    for (const made of ['result.txt', 'sub', 'sub/deep', 'sub/deep/f', 'setuid', 'link']) {
      const m = await lstat(join(dir, made));
      expect([made, m.uid, m.gid]).toEqual([made, CALLER.uid, CALLER.gid]);
    }
    expect((await stat(join(dir, 'setuid'))).mode & 0o6000).toBe(0);
    expect((await stat('/etc/passwd')).uid).toBe(0);
  });
});
