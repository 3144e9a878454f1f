/**
 * Nothing a guest does reaches host files outside its volume directories.
 */
import { lstat, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, inject, it } from 'vitest';
import { describeWithVm } from '../../src/vitest/index.js';

let host: string;
beforeAll(async () => {
  host = await mkdtemp(join(tmpdir(), 'gvmi-iso-'));
  await writeFile(join(host, 'secret'), 'host secret\n');
});

describeWithVm('isolation', { image: inject('tinyImage'), testTimeoutMs: 12_000 }, (vm) => {
  const out = (): string => vm().volumes.find((v) => v.guestPath === '/golem/output')!.hostPath;

  it('symlinks (absolute, relative, ..) come back as links and are never followed', async () => {
    await vm().exec(`ln -s ${join(host, 'secret')} /golem/output/abs; ln -s ../../../../${host}/secret /golem/output/rel; mkdir -p /golem/output/d; ln -s .. /golem/output/d/up`);
    for (const name of ['abs', 'rel']) {
      await vm().download(`/golem/output/${name}`, join(host, `got-${name}`));
      expect((await lstat(join(host, `got-${name}`))).isSymbolicLink()).toBe(true);
    }
    await expect(vm().download('/golem/output/d/up/../../../etc/passwd', join(host, 'x'))).rejects.toMatchObject({ code: 'transfer.not-in-volume' });
    expect(await readFile(join(host, 'secret'), 'utf8')).toBe('host secret\n');
  });

  it('uploads never write through a guest-planted link', async () => {
    await vm().exec(`ln -s ${join(host, 'secret')} /golem/output/planted`);
    await writeFile(join(host, 'payload'), 'payload');
    await vm().upload(join(host, 'payload'), '/golem/output/planted');
    expect(await readFile(join(host, 'secret'), 'utf8')).toBe('host secret\n');
  });

  it('device nodes cannot be made in a volume (QEMU is unprivileged) and never come back', async () => {
    const r = await vm().exec('mknod /golem/output/null c 1 3');
    if (process.getuid?.() === 0 && !process.env['GVMI_TEST_QEMU_USER']) expect(r.exitCode).not.toBe(0);
    const report = await vm().download('/golem/output', join(host, 'all-out'));
    expect(report.skipped.filter((p) => p.endsWith('/null'))).toEqual(r.exitCode === 0 ? [join(out(), 'null')] : []);
  });

  it('hard links stay inside one volume: across volumes they fail, within one they are ordinary files', async () => {
    await vm().exec('echo data > /golem/input/original');
    const across = await vm().exec('ln /golem/input/original /golem/output/linked');
    expect(across.exitCode).not.toBe(0);
    expect(await vm().exec('ln /golem/input/original /golem/input/linked && cat /golem/input/linked')).toMatchObject({ exitCode: 0, stdout: 'data\n' });
    await vm().download('/golem/input/linked', join(host, 'linked'));
    expect(await readFile(join(host, 'linked'), 'utf8')).toBe('data\n');
  });

  it('setuid/setgid bits made by the guest are stripped on download', async () => {
    await vm().exec('cp /bin/busybox /golem/output/suid && chmod 6755 /golem/output/suid');
    await vm().download('/golem/output/suid', join(host, 'suid'));
    expect((await stat(join(host, 'suid'))).mode & 0o7777).toBe(0o755);
  });

  it('a huge sparse file downloads with its holes, not gigabytes of zeros', async () => {
    await vm().exec('truncate -s 20G /golem/output/sparse && echo tail >> /golem/output/sparse');
    await vm().download('/golem/output/sparse', join(host, 'sparse'));
    const st = await stat(join(host, 'sparse'));
    expect(st.size).toBe(20 * 1024 ** 3 + 5);
    expect(st.blocks * 512).toBeLessThan(16 * 1024 * 1024);
  }, 120_000);

  it('temporary directories are private (0700) and the agent socket is gone after boot', async () => {
    const consoleDir = join(vm().info.consoleLog, '..');
    expect((await stat(consoleDir)).mode & 0o777).toBe(0o700);
    for (const v of vm().volumes) expect((await stat(v.hostPath)).mode & 0o077).toBe(0);
    // QEMU listens on the agent socket until we connected; then its name is removed: nobody else can attach
    expect(await readdir(consoleDir)).toEqual(['console.log']);
  });
});
