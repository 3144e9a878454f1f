/**
 * The .gvmi byte layout (reference §1), identical in every gvmkit-build version:
 *
 *   [squashfs S bytes][CRC-32 of JSON, u32 LE][JSON ContainerConfig, N bytes][N as 8 ASCII digits]
 *
 * Readers work from the end. The whole file is the VM's root disk: the kernel reads squashfs up to
 * its bytes_used and never sees the trailer.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { GvmiTestError } from '../errors.js';
import { metadataOf, type ContainerConfig, type ImageMetadata } from './container-config.js';
import { hasSquashfsMagic, parseSuperblock, SUPERBLOCK_SIZE, type SquashfsSuperblock } from './squashfs-superblock.js';

const LENGTH_DIGITS = 8;
const CRC_BYTES = 4;
const MAX_JSON_BYTES = 99_999_999; // what 8 decimal digits can say

export interface GvmiImage {
  path: string;
  fileSize: number;
  /** The squashfs extent: bytes [0, squashfsSize) of the file. */
  squashfsSize: number;
  squashfs: SquashfsSuperblock;
  config: ContainerConfig;
  metadata: ImageMetadata;
  /** The JSON bytes exactly as stored. */
  configJson: string;
}

/** The trailer appended after the squashfs: CRC, JSON, length. */
export function encodeTrailer(config: ContainerConfig): Buffer {
  const json = Buffer.from(JSON.stringify(config), 'utf8');
  if (json.length > MAX_JSON_BYTES) {
    throw new GvmiTestError('build.bad-option', `container config is ${json.length} bytes; a .gvmi holds at most ${MAX_JSON_BYTES}`);
  }
  const crc = Buffer.alloc(CRC_BYTES);
  crc.writeUInt32LE(crc32(json) >>> 0, 0);
  const length = Buffer.from(String(json.length).padStart(LENGTH_DIGITS, '0'), 'ascii');
  return Buffer.concat([crc, json, length]);
}

async function readExactly(handle: FileHandle, length: number, position: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buffer.subarray(0, done);
}

export async function readGvmi(path: string): Promise<GvmiImage> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new GvmiTestError('image.unreadable', `cannot open image ${path}: ${code ?? String(cause)}`, { cause });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new GvmiTestError('image.unreadable', `${path} is not a regular file`);
    const fileSize = stat.size;
    if (fileSize < LENGTH_DIGITS + CRC_BYTES + SUPERBLOCK_SIZE) {
      throw new GvmiTestError('image.truncated', `${path} is ${fileSize} bytes: too short to be a .gvmi (squashfs + trailer)`);
    }
    const lengthField = (await readExactly(handle, LENGTH_DIGITS, fileSize - LENGTH_DIGITS)).toString('latin1');
    if (!/^[0-9]{8}$/.test(lengthField)) {
      throw new GvmiTestError('image.bad-length', `${path}: the last 8 bytes should be the config length as decimal digits, found ${JSON.stringify(lengthField)}`, {
        hint: 'is this a .gvmi? gvmkit-build and gvmi-test build write one',
      });
    }
    const jsonLength = Number(lengthField);
    const squashfsSize = fileSize - LENGTH_DIGITS - jsonLength - CRC_BYTES;
    if (squashfsSize < SUPERBLOCK_SIZE) {
      throw new GvmiTestError('image.bad-length', `${path}: config length ${jsonLength} reaches past the start of the file (${fileSize} bytes)`);
    }
    const crcAndJson = await readExactly(handle, CRC_BYTES + jsonLength, squashfsSize);
    if (crcAndJson.length !== CRC_BYTES + jsonLength) throw new GvmiTestError('image.truncated', `${path}: file shrank while reading`);
    const storedCrc = crcAndJson.readUInt32LE(0);
    const json = crcAndJson.subarray(CRC_BYTES);
    const actualCrc = crc32(json) >>> 0;
    if (storedCrc !== actualCrc) {
      throw new GvmiTestError('image.crc-mismatch', `${path}: invalid ContainerConfig crc32 sum (stored ${hex(storedCrc)}, computed ${hex(actualCrc)})`, {
        hint: 'the file is damaged or was edited; rebuild it',
      });
    }
    const configJson = json.toString('utf8');
    let config: unknown;
    try {
      config = JSON.parse(configJson);
    } catch (cause) {
      throw new GvmiTestError('image.bad-json', `${path}: the container config is not valid JSON`, { cause });
    }
    if (config === null || typeof config !== 'object' || Array.isArray(config)) {
      throw new GvmiTestError('image.bad-json', `${path}: the container config must be a JSON object`);
    }
    const head = await readExactly(handle, SUPERBLOCK_SIZE, 0);
    if (!hasSquashfsMagic(head)) {
      throw new GvmiTestError('image.no-squashfs', `${path}: no squashfs magic ("hsqs") at offset 0`);
    }
    const squashfs = parseSuperblock(head);
    if (squashfs.bytesUsed > squashfsSize) {
      throw new GvmiTestError('image.truncated', `${path}: squashfs says it is ${squashfs.bytesUsed} bytes but only ${squashfsSize} precede the trailer`);
    }
    const typed = config as ContainerConfig;
    return { path, fileSize, squashfsSize, squashfs, config: typed, metadata: metadataOf(typed), configJson };
  } finally {
    await handle.close();
  }
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
