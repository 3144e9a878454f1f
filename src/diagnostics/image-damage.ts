/**
 * A damaged .gvmi: its squashfs superblock and tables are intact (it mounts, `inspect` lists it),
 * but some data blocks do not decompress. Nothing fails until a command reads them; then the
 * program dies (SIGBUS when the kernel cannot page in a mapped file, EIO on read) and only the
 * guest console says why (`SQUASHFS error: lzo decompression failed`). A provider's VM reads the
 * same blocks of the same file and fails the same way, with even less said.
 */
import type { Finding } from './finding.js';

export const VERIFY_ADVICE = '`gvmi-test inspect --verify IMAGE` reads every block and names the damaged file';

export function imageCorruptFinding(consoleLines: readonly string[]): Finding {
  return {
    code: 'image-corrupt',
    severity: 'error',
    message: `the guest could not read the image: its squashfs is damaged (${consoleLines[0] ?? 'I/O error'}), so whatever lies in the damaged blocks cannot be loaded (a program dies with SIGBUS, a read fails with EIO); a provider's VM reads the same bytes and fails the same way`,
    fix: `rebuild the image, or download it again and check its hash; ${VERIFY_ADVICE}`,
    paths: [...consoleLines],
    details: { console: [...consoleLines] },
  };
}

/** The hint of a VM error whose console shows the image could not be read. */
export function imageDamageHint(consoleLines: readonly string[]): string {
  return `the image is damaged (the guest console says: ${consoleLines[0]}): rebuild it or download it again; ${VERIFY_ADVICE}`;
}
