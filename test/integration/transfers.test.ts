import { lstat, mkdtemp, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { describeWithVm } from '../../src/vitest/index.js';

let host: string;

beforeAll(async () => {
  host = await mkdtemp(join(tmpdir(), 'gvmi-xfer-'));
});

describeWithVm('transfers', { image: inject('tinyImage'), testTimeoutMs: 12_000 }, (vm) => {
  describe('upload / download through volumes', () => {
    it('upload -> exec -> download round trip', async () => {
      await writeFile(join(host, 'in.txt'), 'abc\n');
      await vm().upload(join(host, 'in.txt'), '/golem/input/in.txt');
      const r = await vm().exec('tr a-z A-Z < /golem/input/in.txt > /golem/output/out.txt');
      expect(r.exitCode).toBe(0);
      await vm().download('/golem/output/out.txt', join(host, 'out.txt'));
      expect(await readFile(join(host, 'out.txt'), 'utf8')).toBe('ABC\n');
    });

    it('a path outside the volumes is refused with the provider reason', async () => {
      await expect(vm().upload(join(host, 'in.txt'), '/etc/in.txt')).rejects.toMatchObject({ code: 'transfer.not-in-volume' });
      await expect(vm().download('/etc/passwd', join(host, 'p'))).rejects.toMatchObject({ code: 'transfer.not-in-volume' });
    });

    it('a guest-made symlink to /etc/passwd downloads as a link, not the host file', async () => {
      await vm().exec('ln -s /etc/passwd /golem/output/x');
      await vm().download('/golem/output/x', join(host, 'x'));
      expect((await lstat(join(host, 'x'))).isSymbolicLink()).toBe(true);
      expect(await readlink(join(host, 'x'))).toBe('/etc/passwd');
    });

    it('volumes are fresh temporary directories, one per VOLUME', () => {
      expect(vm().volumes.map((v) => [v.guestPath, v.tag, v.temporary])).toEqual([
        ['/golem/input', 'mnt0', true],
        ['/golem/output', 'mnt1', true],
      ]);
    });
  });

  /**
   * The guest swaps entries for links to host paths as fast as it can while the host copies
   * (ATTEMPTS transfers each, zero escapes). The links name real host paths: a host that followed
   * one would copy a root-only file out, or write into a host directory.
   */
  describe('a guest racing the host with symlink swaps', () => {
    const ATTEMPTS = 300;
    const SECRET = 'root-only-host-secret';
    let secretDir: string;

    beforeAll(async () => {
      secretDir = await mkdtemp(join(tmpdir(), 'gvmi-secret-'));
      await writeFile(join(secretDir, 'f'), SECRET, { mode: 0o600 });
    });

    async function swapping(script: string): Promise<{ stop: () => Promise<void> }> {
      const p = await vm().spawn(['/bin/sh', '-c', script]);
      // Let the loop get going before the host starts.
      await new Promise((r) => setTimeout(r, 300));
      return { stop: async () => { await p.kill('SIGKILL').catch(() => {}); await p.wait().catch(() => {}); } };
    }

    it('downloads of a file swapped with a link to a root-only host file never bring the host file', async () => {
      const swap = await swapping(`cd /golem/output; while :; do echo guest > .f; mv -f .f t; ln -sf ${secretDir}/f .l; mv -f .l t; done`);
      let escapes = 0;
      try {
        for (let i = 0; i < ATTEMPTS; i++) {
          const target = join(host, `race-file-${i}`);
          await vm().download('/golem/output/t', target).catch(() => undefined);
          const st = await lstat(target).catch(() => undefined);
          if (st?.isFile() && (await readFile(target, 'utf8')).includes(SECRET)) escapes++;
        }
      } finally {
        await swap.stop();
      }
      expect(escapes).toBe(0);
    });

    it('downloads of a volume whose directory is swapped with a link to a host directory never reach it', async () => {
      const swap = await swapping(`cd /golem/output; while :; do mkdir -p .d; echo guest > .d/f; rm -rf d; mv .d d; ln -sfn ${secretDir} .l; rm -rf d; mv .l d; done`);
      let escapes = 0;
      try {
        for (let i = 0; i < ATTEMPTS; i++) {
          const target = join(host, `race-dir-${i}`);
          await vm().download('/golem/output', target).catch(() => undefined);
          // A link brought back as a link is fine (it points where it points); a copied directory
          // holding the host's file is the escape.
          const copiedDir = await lstat(join(target, 'd')).catch(() => undefined);
          if (!copiedDir?.isDirectory()) continue;
          const copied = join(target, 'd', 'f');
          const st = await lstat(copied).catch(() => undefined);
          if (st?.isFile() && (await readFile(copied, 'utf8')).includes(SECRET)) escapes++;
        }
      } finally {
        await swap.stop();
      }
      expect(escapes).toBe(0);
    });

    it('uploads into a directory swapped with a link to a host directory never land there', async () => {
      await writeFile(join(host, 'payload'), 'from the host');
      const swap = await swapping(`cd /golem/input; while :; do mkdir -p .d; rm -rf d; mv .d d; ln -sfn ${secretDir} .l; rm -rf d; mv .l d; done`);
      try {
        for (let i = 0; i < ATTEMPTS; i++) await vm().upload(join(host, 'payload'), `/golem/input/d/p${i}`).catch(() => undefined);
      } finally {
        await swap.stop();
      }
      expect(await readdir(secretDir)).toEqual(['f']);
    });
  });
});
