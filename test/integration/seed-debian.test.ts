/**
 * The seed's scenario on a real distribution: FROM debian (debootstrap minbase, no Docker),
 * VOLUME /golem/input /golem/output, WORKDIR /golem/work, saved as a `docker save` tarball and
 * converted by gvmi-test build (once per version of the converter and of the tarball: the
 * converted image is kept between runs).
 */
import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../../src/image/build-image.js';
import { inspectImage } from '../../src/image/inspect-image.js';
import { startVm, type StartedVm } from '../../src/index.js';
import { copyOfCachedImage } from '../helpers/cached-image.js';

let image: string;
let vm: StartedVm;

beforeAll(async () => {
  const tarball = (await execa('bash', ['examples/seed-debian/make-image.sh'], { stderr: 'inherit' })).stdout.trim();
  image = join(await mkdtemp(join(tmpdir(), 'gvmi-debian-')), 'seed-debian.gvmi');
  // Converted again whenever the converter (src/image) or the tarball changes; else the image of
  // the last run, so that its VM restores rather than boots cold (helpers/cached-image.ts).
  const st = await stat(tarball);
  await copyOfCachedImage(image, 'seed-debian', [JSON.stringify([tarball, st.size, st.mtimeMs])], (output) => buildImage({ source: tarball, output }).then(() => {}));
  vm = await startVm({ image });
}, 900_000);

afterAll(async () => {
  await vm?.stop();
});

describe('seed-debian image', () => {
  it('inspect names the file baked under /golem/input', async () => {
    const inspection = await inspectImage(image);
    expect(inspection.image.metadata.volumes).toEqual(['/golem/input', '/golem/output']);
    expect(inspection.shadowed.map((e) => e.path)).toEqual(['/golem/input/baked.txt']);
  });

  it('boots Debian 12 under provider conditions', async () => {
    expect((await vm.exec('cat /etc/debian_version')).stdout).toMatch(/^12\./);
    expect((await vm.exec('pwd')).stdout).toBe('/golem/work\n');
    expect((await vm.exec('ls -A /golem/input')).stdout).toBe('');
    expect((await vm.exec(['/bin/hostname'])).stdout).toBe('(none)\n'); // runtime 0.4 sets no hostname
  });

  it('owners and groups from the layer survive the conversion', async () => {
    expect((await vm.exec('stat -c %G /var/mail')).stdout).toBe('mail\n');
    // /var/tmp, not /tmp: a provider mounts a tmpfs (0777) over /tmp
    expect((await vm.exec('stat -c %a /var/tmp')).stdout).toBe('1777\n');
  });

  it('dpkg works on the overlay', async () => {
    const r = await vm.exec('dpkg-query -W -f "${Package}\\n" | wc -l');
    expect(Number(r.stdout.trim())).toBeGreaterThan(50);
  });
});
