/**
 * Where a network served by `gvmi-test network start` can be found by the other gvmi-test
 * processes of this user: one Unix socket per network, `<dir>/<name>.sock`, in a directory of
 * this user alone ($XDG_RUNTIME_DIR/gvmi-test/networks, else under the cache directory). Whoever
 * can connect to a socket can join VMs to the network and forward host ports into it, so the
 * directory is made 0700 and refused when it, or a directory above it, could be changed by
 * another user (src/owned-path.ts).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir } from '../cache-dir.js';
import { GvmiTestError } from '../errors.js';
import { untrustedDirectory } from '../owned-path.js';

/** A Unix socket path holds at most 107 bytes (sun_path). */
const MAX_SOCKET_PATH = 107;

export function networkSocketsDir(): string {
  const runtime = process.env['XDG_RUNTIME_DIR'];
  return runtime ? join(runtime, 'gvmi-test', 'networks') : join(cacheDir(), 'run', 'networks');
}

/** A network's name: what `--network NAME` says, and its socket's file name. */
export function checkNetworkName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) {
    throw new GvmiTestError('usage', `${JSON.stringify(name)} is not a network name`, { hint: 'letters, digits, dots, dashes and underscores, at most 63, not starting with a dot or dash' });
  }
  return name;
}

/** The directory, made (0700) when missing, after checking that it is ours alone. */
export async function trustedNetworkSocketsDir(): Promise<string> {
  const dir = networkSocketsDir();
  const untrusted = await untrustedDirectory(dir);
  if (untrusted) {
    throw new GvmiTestError('setup.unsafe-runtime-dir', `the networks' control sockets cannot be kept in ${dir}: ${untrusted.reason}`, {
      hint: `${untrusted.fix} (or set XDG_RUNTIME_DIR to a directory of yours alone)`,
    });
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode does not touch a directory that existed: checked again now that it exists.
  const after = await untrustedDirectory(dir);
  if (after) throw new GvmiTestError('setup.unsafe-runtime-dir', `the networks' control sockets cannot be kept in ${dir}: ${after.reason}`, { hint: after.fix });
  return dir;
}

export function networkSocketPath(dir: string, name: string): string {
  const path = join(dir, `${checkNetworkName(name)}.sock`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new GvmiTestError('setup.unsafe-runtime-dir', `the control socket path ${path} is longer than a Unix socket allows (${MAX_SOCKET_PATH} bytes)`, {
      hint: 'use a shorter network name, or set XDG_RUNTIME_DIR to a shorter directory',
    });
  }
  return path;
}
