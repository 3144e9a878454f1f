/** `gvmi-test inspect`: what is in a .gvmi and what will surprise its author on a provider. */
import type { Finding } from '../diagnostics/finding.js';
import { architectureFinding } from './binary-architecture.js';
import { staticFindings, shadowedEntries } from './static-findings.js';
import { readGvmi, type GvmiImage } from './gvmi-file.js';
import { listSquashfs, type SquashfsEntry } from './squashfs-listing.js';
import { verifyImage, type Verification } from './verify-image.js';

export interface Inspection {
  image: GvmiImage;
  entryCount: number;
  /** Files baked under VOLUME paths (hidden at run time). */
  shadowed: SquashfsEntry[];
  findings: Finding[];
  /** With `verify`: every block of the squashfs was read back (else it threw image.corrupt). */
  verified?: Verification;
}

export interface InspectOptions {
  /** Read and decompress every block first (`inspect --verify`); damage throws image.corrupt. */
  verify?: boolean;
}

export async function inspectImage(path: string, options: InspectOptions = {}): Promise<Inspection> {
  const image = await readGvmi(path);
  // Before the listing: damaged tables would fail it with a vaguer error.
  const verified = options.verify ? await verifyImage(path) : undefined;
  const entries = await listSquashfs(path);
  const findings = staticFindings(image.metadata, entries, image.fileSize);
  const architecture = await architectureFinding(path, entries, image.metadata);
  if (architecture) findings.push(architecture);
  return {
    image,
    entryCount: entries.length,
    shadowed: shadowedEntries(image.metadata, entries),
    findings,
    ...(verified ? { verified } : {}),
  };
}
