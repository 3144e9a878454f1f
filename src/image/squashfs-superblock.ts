/** The squashfs superblock fields an author cares about (the first 96 bytes of the image). */
export const SQUASHFS_MAGIC = 0x73717368; // "hsqs" little-endian
export const SUPERBLOCK_SIZE = 96;

export const COMPRESSIONS = ['gzip', 'lzma', 'lzo', 'xz', 'lz4', 'zstd'] as const;
export type CompressionName = (typeof COMPRESSIONS)[number];
/** What `gvmi-test build --compression` accepts: what mksquashfs and the guest kernel both do. */
export const BUILD_COMPRESSIONS = ['lzo', 'gzip', 'lz4', 'zstd', 'xz'] as const;
export type BuildCompression = (typeof BUILD_COMPRESSIONS)[number];

export interface SquashfsSuperblock {
  inodes: number;
  mkfsTime: Date;
  blockSize: number;
  compression: CompressionName | `unknown(${number})`;
  /** Bytes of the filesystem proper; the file may be padded past it. */
  bytesUsed: number;
  version: string;
}

export function hasSquashfsMagic(head: Uint8Array): boolean {
  return head.length >= 4 && Buffer.from(head.buffer, head.byteOffset, 4).readUInt32LE(0) === SQUASHFS_MAGIC;
}

export function parseSuperblock(bytes: Buffer): SquashfsSuperblock {
  const id = bytes.readUInt16LE(20);
  return {
    inodes: bytes.readUInt32LE(4),
    mkfsTime: new Date(bytes.readUInt32LE(8) * 1000),
    blockSize: bytes.readUInt32LE(12),
    compression: COMPRESSIONS[id - 1] ?? `unknown(${id})`,
    bytesUsed: Number(bytes.readBigUInt64LE(40)),
    version: `${bytes.readUInt16LE(28)}.${bytes.readUInt16LE(30)}`,
  };
}
