/** The first bytes of a host file as text (for a script's `#!` line), without following a final symlink. */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

export async function readHead(path: string, bytes: number): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!(await handle.stat()).isFile()) return '';
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}
