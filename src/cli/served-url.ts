/**
 * Handing a served VM's URL to another process without showing its token to other local users.
 * The token is a root shell in the VM, and a command line is public: any local user reads it
 * from `ps` or /proc/PID/cmdline. So the URL never travels in argv: it comes from the
 * environment (GVMI_TEST_CONNECT; /proc/PID/environ is readable by its owner only), from stdin
 * (`--connect -`), or from a file only its owner can read (`--connect-file`, which
 * `serve --url-file` writes).
 */
import { constants } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { GvmiTestError } from '../errors.js';

export const CONNECT_ENV = 'GVMI_TEST_CONNECT';

const SAFE_WAYS = `give it in the environment (${CONNECT_ENV}=URL), on stdin (--connect -), or in a file only you can read (--connect-file PATH, written by gvmi-test serve --url-file PATH)`;

/** Whether a URL carries a token: `?token=` (the form serve prints) or user info. */
export function urlHasToken(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.searchParams.has('token') || parsed.username !== '' || parsed.password !== '';
  } catch {
    // not a URL we can parse: be safe and treat anything token-like as one
    return /token=/i.test(url);
  }
}

/** First line of a stream (the URL), without waiting for more once it has arrived. */
async function readFirstLine(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    if (text.includes('\n') || text.length > 64 * 1024) break;
  }
  return text.split('\n')[0]!.trim();
}

/**
 * Reads the URL from a file that must be a regular file owned by us and unreadable by group and
 * others: a file anyone else can read has already leaked the token.
 */
export async function readUrlFile(path: string): Promise<string> {
  let handle;
  try {
    // O_NONBLOCK: a FIFO planted at the path must not hang us before the checks below refuse it
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new GvmiTestError('usage', `--connect-file ${path}: ${(error as Error).message}`);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new GvmiTestError('usage', `--connect-file ${path}: not a regular file`);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) {
      throw new GvmiTestError('usage', `--connect-file ${path}: owned by uid ${st.uid}, not by you (uid ${uid}): someone else chose this URL`, {
        hint: 'use the file your own gvmi-test serve --url-file wrote',
      });
    }
    if ((st.mode & 0o077) !== 0) {
      throw new GvmiTestError('usage', `--connect-file ${path}: mode ${(st.mode & 0o777).toString(8).padStart(4, '0')} lets other users read the token`, {
        hint: `chmod 600 ${path} (and start a new serve if others may have read it: the token gives a root shell in the VM)`,
      });
    }
    const url = (await handle.readFile('utf8')).split('\n')[0]!.trim();
    if (!url) throw new GvmiTestError('usage', `--connect-file ${path}: the file is empty`);
    return url;
  } finally {
    await handle.close();
  }
}

export interface ConnectSources {
  /** `--connect`: only `-` (stdin); a URL here is refused. */
  connect?: string | undefined;
  connectFile?: string | undefined;
  env?: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadableStream;
}

/** The URL to connect to, from exactly one of the safe sources; a token in argv is refused. */
export async function resolveConnectUrl(sources: ConnectSources): Promise<string> {
  const fromEnv = (sources.env ?? process.env)[CONNECT_ENV] || undefined;
  const given = [sources.connect !== undefined, sources.connectFile !== undefined].filter(Boolean).length;
  if (given > 1) throw new GvmiTestError('usage', '--connect and --connect-file are exclusive: give one');
  if (sources.connect !== undefined && sources.connect !== '-') {
    // Refused even without a token: the server needs one, and the only place left for it
    // would be the command line.
    throw new GvmiTestError('usage', urlHasToken(sources.connect)
      ? '--connect URL: a token on the command line is visible to every local user (ps), and it gives a root shell in the VM'
      : '--connect takes - (read the URL from stdin), not a URL', { hint: SAFE_WAYS });
  }
  let url: string | undefined;
  if (sources.connect === '-') url = await readFirstLine(sources.stdin);
  else if (sources.connectFile !== undefined) url = await readUrlFile(sources.connectFile);
  else url = fromEnv;
  if (!url) throw new GvmiTestError('usage', 'no URL of a served VM given', { hint: SAFE_WAYS });
  return url;
}

/**
 * Writes the URL for `--connect-file`: created exclusively (never through a planted file or
 * symlink) with mode 0600. Returns a function that removes it.
 */
export async function writeUrlFile(path: string, url: string): Promise<() => Promise<void>> {
  let handle;
  try {
    handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new GvmiTestError('usage', `--url-file ${path}: ${code === 'EEXIST' ? 'already exists' : (error as Error).message}`, {
      ...(code === 'EEXIST' ? { hint: 'remove it (a stale file from an earlier serve?) or choose another path' } : {}),
    });
  }
  const remove = (): Promise<void> => unlink(path).catch(() => {});
  try {
    await handle.writeFile(`${url}\n`);
  } catch (error) {
    await remove();
    throw error;
  } finally {
    await handle.close();
  }
  return remove;
}
