/** `gvmi-test inspect`: what is in a .gvmi and what will surprise its author on a provider. */
import { staticFindings, shadowedEntries } from '../diagnostics/static-findings.js';
import type { Finding } from '../diagnostics/finding.js';
import { readGvmi, type GvmiImage } from './gvmi-file.js';
import { listSquashfs, type SquashfsEntry } from './squashfs-listing.js';

export interface Inspection {
  image: GvmiImage;
  entryCount: number;
  /** Files baked under VOLUME paths (hidden at run time). */
  shadowed: SquashfsEntry[];
  findings: Finding[];
}

export async function inspectImage(path: string): Promise<Inspection> {
  const image = await readGvmi(path);
  const entries = await listSquashfs(path);
  return {
    image,
    entryCount: entries.length,
    shadowed: shadowedEntries(image.metadata, entries),
    findings: staticFindings(image.metadata, entries, image.fileSize),
  };
}
