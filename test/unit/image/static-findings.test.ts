import { mkdir, mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { metadataOf, type ContainerConfig } from '../../../src/image/container-config.js';
import type { SquashfsEntry } from '../../../src/image/squashfs-listing.js';
import { staticFindings, volumeOf } from '../../../src/image/static-findings.js';
import { elfMachine } from '../../../src/image/binary-architecture.js';
import { buildImage } from '../../../src/image/build-image.js';
import { inspectImage } from '../../../src/image/inspect-image.js';
import { minimalRootfs, rawGvmi } from '../../helpers/raw-gvmi.js';

const entry = (path: string, type: SquashfsEntry['type'] = 'file'): SquashfsEntry => ({ path, type, mode: '-rw-r--r--', uid: 0, gid: 0, size: 10 });
const base = [entry('/etc', 'dir'), entry('/proc', 'dir'), entry('/sys', 'dir'), entry('/bin', 'dir'), entry('/bin/sh')];

describe('static findings', () => {
  it('a clean image has none', () => {
    expect(staticFindings(metadataOf({ Volumes: { '/out': {} } }), base, 1e6)).toEqual([]);
  });

  it.each([
    ['no-volumes', {}, base, 1e6],
    ['no-etc', { Volumes: { '/o': {} } }, [entry('/proc', 'dir'), entry('/sys', 'dir'), entry('/bin/sh')], 1e6],
    ['no-proc-sys', { Volumes: { '/o': {} } }, [entry('/etc', 'dir'), entry('/sys', 'dir'), entry('/bin/sh')], 1e6],
    ['no-proc-sys', { Volumes: { '/o': {} } }, [entry('/etc', 'dir'), entry('/proc', 'dir'), entry('/sys')], 1e6],
    ['user-dropped', { Volumes: { '/o': {} }, User: 'app' }, base, 1e6],
    ['entrypoint-ignored', { Volumes: { '/o': {} }, Entrypoint: ['/app'] }, base, 1e6],
    ['image-large', { Volumes: { '/o': {} } }, base, 2 * 1024 ** 3],
    ['shadowed-files', { Volumes: { '/golem/input': {} } }, [...base, entry('/golem/input', 'dir'), entry('/golem/input/a.txt')], 1e6],
  ] as const)('%s', (code, config, entries, size) => {
    const findings = staticFindings(metadataOf(config as ContainerConfig), entries, size);
    expect(findings.map((f) => f.code)).toEqual([code]);
    expect(findings[0]!.fix.length).toBeGreaterThan(10);
  });

  it('the longest volume containing a path wins', () => {
    expect(volumeOf(['/golem', '/golem/output'], '/golem/output/x')).toBe('/golem/output');
    expect(volumeOf(['/golem/output'], '/golem/outputs/x')).toBeUndefined();
  });

  it('reads the machine from ELF headers', () => {
    const header = (machine: number): Buffer => {
      const b = Buffer.alloc(20);
      b.writeUInt32BE(0x7f454c46, 0);
      b[4] = 2;
      b[5] = 1;
      b.writeUInt16LE(machine, 18);
      return b;
    };
    expect(elfMachine(header(0x3e))).toBe('amd64');
    expect(elfMachine(header(0xb7))).toBe('arm64');
    expect(elfMachine(Buffer.from('#!/bin/sh\necho hi\n'))).toBeUndefined();
  });

  it('inspect flags an image whose programs are arm64', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gvmi-arm-'));
    await mkdir(join(dir, 'root/bin'), { recursive: true });
    await mkdir(join(dir, 'root/etc'));
    const elf = Buffer.alloc(256);
    elf.writeUInt32BE(0x7f454c46, 0);
    elf[4] = 2;
    elf[5] = 1;
    elf.writeUInt16LE(0xb7, 18);
    await writeFile(join(dir, 'root/bin/tool'), elf);
    await chmod(join(dir, 'root/bin/tool'), 0o755);
    await buildImage({ source: join(dir, 'root'), output: join(dir, 'arm.gvmi'), volumes: ['/out'] });
    const inspection = await inspectImage(join(dir, 'arm.gvmi'));
    const f = inspection.findings.find((x) => x.code === 'non-amd64');
    expect(f?.paths).toEqual(['/bin/tool (arm64)']);
    expect(f?.fix).toMatch(/linux\/amd64/);
  });

  it('inspect flags an image without /proc or /sys (made without Docker); gvmi-test build adds both', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gvmi-noproc-'));
    try {
      const root = await minimalRootfs(join(dir, 'root'), ['etc']);
      const raw = await rawGvmi(root, join(dir, 'raw.gvmi'), { volumes: ['/out'] });
      const f = (await inspectImage(raw)).findings.find((x) => x.code === 'no-proc-sys');
      expect(f).toMatchObject({ severity: 'error', paths: ['/proc', '/sys'] });
      expect(f?.message).toMatch(/VM stops at boot/);
      expect(f?.fix).toContain('mkdir -p /proc /sys');
      await buildImage({ source: root, output: join(dir, 'built.gvmi'), volumes: ['/out'] });
      expect((await inspectImage(join(dir, 'built.gvmi'))).findings.map((x) => x.code)).not.toContain('no-proc-sys');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
