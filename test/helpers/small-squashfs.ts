/** A tiny real squashfs (one file under /etc), made with mksquashfs, for format tests. */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function smallSquashfs(): Promise<{ dir: string; path: string; bytes: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'gvmi-sqfs-'));
  await mkdir(join(dir, 'tree/etc'), { recursive: true });
  await writeFile(join(dir, 'tree/etc/hello'), 'hi\n');
  const path = join(dir, 'fs.sqfs');
  execFileSync('mksquashfs', [join(dir, 'tree'), path, '-noappend', '-comp', 'lzo', '-quiet', '-no-progress']);
  return { dir, path, bytes: await readFile(path) };
}
