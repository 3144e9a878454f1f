/**
 * Which files baked into the image a VM's volumes hide. Listing a squashfs spawns unsquashfs on
 * every start; when the image's digest is known (snapshots on), the answer is remembered per
 * (image digest, volume paths), so a restored VM does not pay for it.
 */
import { shadowedEntries } from '../image/static-findings.js';
import type { ImageMetadata } from '../image/container-config.js';
import { LISTING_VERSION, listSquashfs } from '../image/squashfs-listing.js';
import { memoPath, readMemo, writeMemo } from '../memo.js';

export async function shadowedPaths(imagePath: string, metadata: ImageMetadata, volumePaths: readonly string[], digest?: string): Promise<string[]> {
  // Best-effort: an unreadable listing only costs the shadowing warning (and is not remembered).
  const compute = async (): Promise<string[] | undefined> => {
    const entries = await listSquashfs(imagePath).catch(() => undefined);
    return entries && shadowedEntries({ ...metadata, volumes: [...volumePaths] }, entries).map((e) => e.path);
  };
  if (!digest) return (await compute()) ?? [];
  const memo = memoPath('shadowed', [digest, [...volumePaths].sort(), LISTING_VERSION]);
  const remembered = await readMemo(memo).then((t) => (t === undefined ? undefined : JSON.parse(t) as unknown)).catch(() => undefined);
  if (Array.isArray(remembered) && remembered.every((p) => typeof p === 'string')) return remembered;
  const paths = await compute();
  if (!paths) return [];
  await writeMemo(memo, JSON.stringify(paths));
  return paths;
}
