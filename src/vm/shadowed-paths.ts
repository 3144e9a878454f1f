/**
 * Which files baked into the image a VM's volumes hide. Listing a squashfs spawns unsquashfs on
 * every start; when the image's digest is known (snapshots on), the answer is remembered per
 * (image digest, volume paths), so a restored VM does not pay for it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir } from '../cache-dir.js';
import { shadowedEntries } from '../diagnostics/static-findings.js';
import type { ImageMetadata } from '../image/container-config.js';
import { listSquashfs } from '../image/squashfs-listing.js';

export async function shadowedPaths(imagePath: string, metadata: ImageMetadata, volumePaths: readonly string[], digest?: string): Promise<string[]> {
  // Best-effort: an unreadable listing only costs the shadowing warning (and is not remembered).
  const compute = async (): Promise<string[] | undefined> => {
    const entries = await listSquashfs(imagePath).catch(() => undefined);
    return entries && shadowedEntries({ ...metadata, volumes: [...volumePaths] }, entries).map((e) => e.path);
  };
  if (!digest) return (await compute()) ?? [];
  const dir = join(cacheDir(), 'shadowed');
  const file = join(dir, `${createHash('sha256').update(JSON.stringify([digest, [...volumePaths].sort()])).digest('hex').slice(0, 32)}.json`);
  const remembered = await readFile(file, 'utf8').then((t) => JSON.parse(t) as unknown, () => undefined);
  if (Array.isArray(remembered) && remembered.every((p) => typeof p === 'string')) return remembered;
  const paths = await compute();
  if (!paths) return [];
  // Remembering is an optimisation: a read-only cache must not cost the answer.
  const temporary = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await mkdir(dir, { recursive: true })
    .then(() => writeFile(temporary, JSON.stringify(paths)))
    .then(() => rename(temporary, file))
    .catch(() => rm(temporary, { force: true }).catch(() => {}));
  return paths;
}
