/**
 * The served VM's URL (a token giving a root shell in the VM) reaches `exec` only through
 * channels other local users cannot read: never argv, never a group/other-readable file.
 */
import { chmod, mkdtemp, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { readUrlFile, resolveConnectUrl, writeUrlFile } from '../../../src/cli/served-url.js';

const URL = 'ws://127.0.0.1:4242/?token=secretsecretsecretsecretsecretse';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gvmi-served-url-'));
});

function stdinWith(text: string): PassThrough {
  const s = new PassThrough();
  s.end(text);
  return s;
}

describe('resolveConnectUrl', () => {
  it('refuses a URL with a token on the command line, naming the safe ways', async () => {
    const error = await resolveConnectUrl({ connect: URL, stdin: stdinWith(''), env: {} }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'usage', message: expect.stringContaining('visible to every local user') });
    expect((error as { hint: string }).hint).toMatch(/GVMI_TEST_CONNECT.*--connect -.*--connect-file/);
  });

  it('takes the URL from the environment, from stdin, or from a 0600 file of ours', async () => {
    expect(await resolveConnectUrl({ stdin: stdinWith(''), env: { GVMI_TEST_CONNECT: URL } })).toBe(URL);
    expect(await resolveConnectUrl({ connect: '-', stdin: stdinWith(`${URL}\nmore\n`), env: {} })).toBe(URL);
    const file = join(dir, 'ok.url');
    await writeFile(file, `${URL}\n`, { mode: 0o600 });
    expect(await resolveConnectUrl({ connectFile: file, stdin: stdinWith(''), env: {} })).toBe(URL);
  });

  it('with no source at all, says where the URL can come from', async () => {
    await expect(resolveConnectUrl({ stdin: stdinWith(''), env: {} })).rejects.toMatchObject({ code: 'usage', hint: expect.stringContaining('--connect-file') });
  });
});

describe('url files', () => {
  it('a file group or others can read is refused with chmod 600 in the hint', async () => {
    const file = join(dir, 'open.url');
    await writeFile(file, URL);
    await chmod(file, 0o644);
    await expect(readUrlFile(file)).rejects.toMatchObject({ code: 'usage', message: expect.stringContaining('0644'), hint: expect.stringContaining(`chmod 600 ${file}`) });
    await chmod(file, 0o640);
    await expect(readUrlFile(file)).rejects.toMatchObject({ code: 'usage' });
  });

  it('serve writes it 0600, exclusively (never over a planted file or symlink), and removes it', async () => {
    const file = join(dir, 'serve.url');
    const remove = await writeUrlFile(file, URL);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toBe(`${URL}\n`);
    expect(await readUrlFile(file)).toBe(URL);
    await remove();
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });

    const planted = join(dir, 'planted.url');
    await symlink(join(dir, 'elsewhere'), planted);
    await expect(writeUrlFile(planted, URL)).rejects.toMatchObject({ code: 'usage', message: expect.stringContaining('already exists') });
    await expect(stat(join(dir, 'elsewhere'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
