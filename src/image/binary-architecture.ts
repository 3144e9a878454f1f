/**
 * Which CPU the image's programs are built for. Providers run amd64; an arm64 image built on an
 * Apple-silicon laptop fails there with "exec format error". Samples executables from the usual
 * bin directories (and the ENTRYPOINT/CMD program) by extracting just those files.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Finding } from '../diagnostics/finding.js';
import type { ImageMetadata } from './container-config.js';
import type { SquashfsEntry } from './squashfs-listing.js';

const MACHINES: Record<number, string> = { 0x03: 'i386', 0x3e: 'amd64', 0x28: 'arm', 0xb7: 'arm64', 0xf3: 'riscv64', 0x15: 'ppc64', 0x16: 's390x' };
const BIN_DIRS = ['/bin/', '/sbin/', '/usr/bin/', '/usr/sbin/', '/usr/local/bin/'];
const SAMPLE = 24;

/** e_machine of an ELF header, or undefined when the bytes are not ELF. */
export function elfMachine(head: Buffer): string | undefined {
  if (head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const machine = head[5] === 2 ? head.readUInt16BE(18) : head.readUInt16LE(18);
  return MACHINES[machine] ?? `machine 0x${machine.toString(16)}`;
}

export function sampleExecutables(entries: readonly SquashfsEntry[], metadata: ImageMetadata): string[] {
  const files = entries.filter((e) => e.type === 'file' && e.size >= 64 && /x/.test(e.mode));
  const byPath = new Set(files.map((e) => e.path));
  const wanted = [metadata.entrypoint[0], metadata.cmd[0]].filter((p): p is string => !!p && byPath.has(p));
  const fromBins = files.filter((e) => BIN_DIRS.some((d) => e.path.startsWith(d))).map((e) => e.path);
  return [...new Set([...wanted, ...fromBins])].slice(0, SAMPLE);
}

export async function architectureFinding(imagePath: string, entries: readonly SquashfsEntry[], metadata: ImageMetadata): Promise<Finding | undefined> {
  const sample = sampleExecutables(entries, metadata);
  if (sample.length === 0) return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'gvmi-elf-'));
  try {
    const r = await execa('unsquashfs', ['-no-progress', '-q', '-f', '-d', join(dir, 'x'), imagePath, ...sample], { reject: false });
    if (r.failed) return undefined;
    const foreign: string[] = [];
    const machines = new Set<string>();
    for (const path of sample) {
      const handle = await open(join(dir, 'x', path), 'r').catch(() => undefined);
      if (!handle) continue;
      const head = Buffer.alloc(20);
      await handle.read(head, 0, 20, 0);
      await handle.close();
      const machine = elfMachine(head);
      if (!machine) continue;
      if (machine !== 'amd64') {
        foreign.push(`${path} (${machine})`);
        machines.add(machine);
      }
    }
    if (foreign.length === 0) return undefined;
    return {
      code: 'non-amd64',
      severity: 'error',
      message: `executables built for ${[...machines].join(', ')}: Golem providers run amd64 and will fail with "exec format error"`,
      fix: 'build the image for linux/amd64 (docker buildx build --platform linux/amd64 …)',
      paths: foreign,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
