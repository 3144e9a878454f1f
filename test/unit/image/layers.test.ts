import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../../../src/image/build-image.js';
import { listSquashfs, type SquashfsEntry } from '../../../src/image/squashfs-listing.js';
import { isGvmiTestError } from '../../../src/errors.js';
import { makeDockerSave, makeOciLayout, makeTar, type ImageSpec } from '../../helpers/tar-builder.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-layers-'));
});

/** Three layers exercising whiteouts, opaque directories, links, owners and modes. */
const spec: ImageSpec = {
  config: {
    Env: ['PATH=/usr/bin:/bin', 'LAYERED=yes'], Cmd: ['/bin/app'], Entrypoint: null, WorkingDir: '/golem/work',
    Volumes: { '/golem/input': {}, '/golem/output': {} }, Labels: { 'org.example': 'x' }, User: '1000:1000',
  },
  layers: [
    [
      { name: 'etc/', type: 'directory', mode: 0o755 },
      { name: 'etc/keep.conf', content: 'keep' },
      { name: 'etc/removed.conf', content: 'gone soon' },
      { name: 'opaque/', type: 'directory' },
      { name: 'opaque/old-a', content: 'old' },
      { name: 'opaque/old-b', content: 'old' },
      { name: 'bin/', type: 'directory' },
      { name: 'bin/app', content: '#!/bin/sh\necho app\n', mode: 0o4755, uid: 0, gid: 0 },
      { name: 'home/user/', type: 'directory', mode: 0o700, uid: 1000, gid: 1000 },
      { name: 'home/user/secret', content: 's', mode: 0o600, uid: 1000, gid: 1000 },
      { name: 'dev/', type: 'directory' },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
    ],
    [
      { name: 'etc/.wh.removed.conf', content: '' },
      { name: 'opaque/', type: 'directory' },
      { name: 'opaque/.wh..wh..opq', content: '' },
      { name: 'opaque/new', content: 'new' },
      { name: 'bin/hard', type: 'link', linkname: 'bin/app' },
      { name: 'bin/soft', type: 'symlink', linkname: '/bin/app' },
      { name: 'golem/input/baked.txt', content: 'shadowed' },
    ],
    [
      { name: './etc/keep.conf', content: 'keep v2' },
      { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
      { name: 'usr/lib/', type: 'directory' },
      // written through the symlink, as a container engine does
      { name: 'lib/libx.so', content: 'lib' },
    ],
  ],
};

function byPath(entries: SquashfsEntry[]): Map<string, SquashfsEntry> {
  return new Map(entries.map((e) => [e.path, e]));
}

function readFromImage(image: string, path: string): string {
  return execFileSync('unsquashfs', ['-cat', image, path], { encoding: 'utf8' });
}

describe.each([
  ['docker save', makeDockerSave, false],
  ['docker save, gzip layers', makeDockerSave, true],
  ['OCI layout', makeOciLayout, false],
  ['OCI layout, gzip layers', makeOciLayout, true],
] as const)('layer flattening from %s', (label, make, gzip) => {
  let image: string;
  let entries: Map<string, SquashfsEntry>;
  let sourceKind: string;
  let metadata: Awaited<ReturnType<typeof buildImage>>['image']['metadata'];

  beforeAll(async () => {
    const archive = join(dir, `${label.replace(/\W+/g, '-')}.tar`);
    await writeFile(archive, await make({ ...spec, gzipLayers: gzip }));
    image = join(dir, `${label.replace(/\W+/g, '-')}.gvmi`);
    const result = await buildImage({ source: archive, output: image, env: ['EXTRA=1'] });
    entries = byPath(await listSquashfs(image));
    sourceKind = result.sourceKind;
    metadata = result.image.metadata;
  });

  it('recognises the archive format', () => {
    expect(sourceKind).toBe(label.startsWith('OCI') ? 'oci' : 'docker-save');
  });

  it('whiteouts delete, later layers replace', () => {
    expect(entries.has('/etc/removed.conf')).toBe(false);
    expect(readFromImage(image, 'etc/keep.conf')).toBe('keep v2');
  });

  it('an opaque directory hides the lower layers and keeps its own layer', () => {
    expect([...entries.keys()].filter((p) => p.startsWith('/opaque/')).sort()).toEqual(['/opaque/new']);
  });

  it('keeps hard links, symlinks, modes, owners and device nodes', () => {
    expect(entries.get('/bin/app')?.mode).toBe('-rwsr-xr-x');
    expect(entries.get('/bin/hard')?.type).toBe('file');
    expect(readFromImage(image, 'bin/hard')).toBe('#!/bin/sh\necho app\n');
    expect(entries.get('/bin/soft')).toMatchObject({ type: 'symlink', linkTarget: '/bin/app' });
    expect(entries.get('/home/user')).toMatchObject({ mode: 'drwx------', uid: 1000, gid: 1000 });
    expect(entries.get('/home/user/secret')).toMatchObject({ mode: '-rw-------', uid: 1000, gid: 1000 });
    expect(entries.get('/dev/null')).toMatchObject({ type: 'char', mode: 'crw-rw-rw-' });
  });

  it('writes through symlinks inside the root, as an engine does', () => {
    expect(entries.get('/lib')).toMatchObject({ type: 'symlink', linkTarget: 'usr/lib' });
    expect(entries.has('/usr/lib/libx.so')).toBe(true);
  });

  it('takes the image config and adds command-line settings', () => {
    expect(metadata.env).toEqual(['PATH=/usr/bin:/bin', 'LAYERED=yes', 'EXTRA=1']);
    expect(metadata.volumes).toEqual(['/golem/input', '/golem/output']);
    expect(metadata.workingDir).toBe('/golem/work');
    expect(metadata.cmd).toEqual(['/bin/app']);
    expect(metadata.labels).toEqual({ 'org.example': 'x' });
    expect(metadata.user).toBe('1000:1000');
    expect(metadata.imageId).toMatch(/^[0-9a-f]{64}$/);
  });
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(isGvmiTestError(e), String(e)).toBe(true);
  return (e as { code: string }).code;
}

describe('hostile and broken archives', () => {
  it('a layer entry climbing out with ../ is refused, nothing written outside', async () => {
    const victim = join(dir, 'victim');
    await mkdir(victim);
    const archive = join(dir, 'escape.tar');
    await writeFile(archive, await makeDockerSave({ config: {}, layers: [[{ name: `../../../../..${victim}/pwned`, content: 'x' }]] }));
    expect(await codeOf(buildImage({ source: archive, output: join(dir, 'escape.gvmi') }))).toBe('build.path-escape');
    expect(await readdir(victim)).toEqual([]);
  });

  it('a symlink to an absolute host path stays inside the root when written through', async () => {
    const victim = join(dir, 'victim2');
    await mkdir(victim);
    const archive = join(dir, 'symlink-escape.tar');
    await writeFile(archive, await makeDockerSave({
      config: { Volumes: { '/v': {} } },
      layers: [[{ name: 'evil', type: 'symlink', linkname: victim }], [{ name: 'evil/pwned', content: 'x' }]],
    }));
    const output = join(dir, 'symlink-escape.gvmi');
    await buildImage({ source: archive, output });
    expect(await readdir(victim)).toEqual([]);
    expect(byPath(await listSquashfs(output)).has(`${victim}/pwned`)).toBe(true);
  });

  it('a file that is no tar at all', async () => {
    const archive = join(dir, 'random.tar');
    await writeFile(archive, Buffer.alloc(10000, 0x41));
    expect(await codeOf(buildImage({ source: archive, output: join(dir, 'r.gvmi') }))).toBe('build.unknown-archive');
  });

  it('a tar that is neither docker save nor OCI', async () => {
    const archive = join(dir, 'plain.tar');
    await writeFile(archive, await makeTar([{ name: 'hello.txt', content: 'hi' }]));
    expect(await codeOf(buildImage({ source: archive, output: join(dir, 'p.gvmi') }))).toBe('build.unknown-archive');
  });

  it('a manifest naming a missing layer', async () => {
    const archive = join(dir, 'missing-layer.tar');
    await writeFile(archive, await makeTar([
      { name: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', Layers: ['nope/layer.tar'] }]) },
      { name: 'c.json', content: '{"config":{}}' },
    ]));
    expect(await codeOf(buildImage({ source: archive, output: join(dir, 'ml.gvmi') }))).toBe('build.bad-archive');
  });

  it('an OCI layout given as a directory works like the tar', async () => {
    const layoutDir = join(dir, 'oci-dir');
    await mkdir(layoutDir);
    await writeFile(join(dir, 'oci.tar'), await makeOciLayout({ config: { Volumes: { '/out': {} } }, layers: [[{ name: 'etc/', type: 'directory' }, { name: 'etc/x', content: 'y' }]] }));
    execFileSync('tar', ['-xf', join(dir, 'oci.tar'), '-C', layoutDir]);
    const result = await buildImage({ source: layoutDir, output: join(dir, 'oci-dir.gvmi') });
    expect(result.sourceKind).toBe('oci');
    expect(byPath(await listSquashfs(join(dir, 'oci-dir.gvmi'))).has('/etc/x')).toBe(true);
  });
});
