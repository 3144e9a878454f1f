import { lstat, mkdtemp, readFile, readlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVm, type StartedVm } from '../../src/index.js';

let vm: StartedVm;
let host: string;

beforeAll(async () => {
  host = await mkdtemp(join(tmpdir(), 'gvmi-xfer-'));
  vm = await startVm({ image: inject('tinyImage') });
});
afterAll(async () => {
  await vm?.stop();
});

describe('upload / download through volumes', () => {
  it('upload -> exec -> download round trip', async () => {
    await writeFile(join(host, 'in.txt'), 'abc\n');
    await vm.upload(join(host, 'in.txt'), '/golem/input/in.txt');
    const r = await vm.exec('tr a-z A-Z < /golem/input/in.txt > /golem/output/out.txt');
    expect(r.exitCode).toBe(0);
    await vm.download('/golem/output/out.txt', join(host, 'out.txt'));
    expect(await readFile(join(host, 'out.txt'), 'utf8')).toBe('ABC\n');
  });

  it('a path outside the volumes is refused with the provider reason', async () => {
    await expect(vm.upload(join(host, 'in.txt'), '/etc/in.txt')).rejects.toMatchObject({ code: 'transfer.not-in-volume' });
    await expect(vm.download('/etc/passwd', join(host, 'p'))).rejects.toMatchObject({ code: 'transfer.not-in-volume' });
  });

  it('a guest-made symlink to /etc/passwd downloads as a link, not the host file', async () => {
    await vm.exec('ln -s /etc/passwd /golem/output/x');
    await vm.download('/golem/output/x', join(host, 'x'));
    expect((await lstat(join(host, 'x'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(host, 'x'))).toBe('/etc/passwd');
  });

  it('volumes are fresh temporary directories, one per VOLUME', () => {
    expect(vm.volumes.map((v) => [v.guestPath, v.tag, v.temporary])).toEqual([
      ['/golem/input', 'mnt0', true],
      ['/golem/output', 'mnt1', true],
    ]);
  });
});
