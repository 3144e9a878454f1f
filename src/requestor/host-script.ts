/**
 * Running a file of this host in the VM as a requestor does: it can only send files into
 * volumes, so the file is uploaded into the image's first volume and run from there — as
 * itself when it starts with `#!`, through the image's /bin/sh otherwise. Works with any VmLike
 * (a StartedVm, or a RemoteVm reached over `gvmi-test serve`), through its public methods only.
 */
import { chmod, copyFile, mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { GvmiTestError } from '../errors.js';
import type { ExecOptions } from '../vm/started-vm.js';
import type { ExecResult } from '../vm/guest-process.js';
import type { VmLike } from '../vm/vm-like.js';

/** What was uploaded, and the command that runs it. */
export interface UploadedScript {
  /** The host file (absolute). */
  host: string;
  /** Where it is in the guest: `<first volume>/<its name>`. */
  guest: string;
  /** `[guest, ...args]` for a `#!` script, `['/bin/sh', guest, ...args]` otherwise. */
  argv: string[];
}

/**
 * The host file a command's first word names, if it does: a relative path (`./job.sh`,
 * `tools/job.py`, `job.sh`) to a regular file here. An absolute path is the image's (a provider
 * runs the program as given, with no PATH search, and every host has a /bin/sh of its own); a
 * bare name (`ls`) is a guest program.
 */
export async function findHostScript(word: string): Promise<string | undefined> {
  if (!word.includes('/') && !word.includes('.')) return undefined;
  if (isAbsolute(word)) return undefined;
  const st = await stat(word).catch(() => undefined);
  return st?.isFile() ? resolve(word) : undefined;
}

/** `path` as a host file to run (any path, absolute too); a usage error naming it as `what` when it is none. */
export async function hostScriptFile(path: string, what = path): Promise<string> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) throw new GvmiTestError('usage', `${what}: ${st ? 'not a regular file' : 'no such file'} on this host`);
  return resolve(path);
}

/** The volume a requestor's files go to by default: the image's first VOLUME that is mounted, else the first mounted. */
export function defaultVolume(vm: Pick<VmLike, 'info' | 'volumes'>): string | undefined {
  const declared = vm.info.metadata.volumes;
  return vm.volumes.find((v) => declared.includes(v.guestPath))?.guestPath ?? vm.volumes[0]?.guestPath;
}

async function startsWithShebang(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(2);
    await handle.read(buf, 0, 2, 0);
    return buf.toString('latin1') === '#!';
  } finally {
    await handle.close();
  }
}

/**
 * Uploads the host file `script` into the VM's default volume and says how to run it with
 * `args`. A `#!` script is sent executable (a private copy is, the host file is left as it is),
 * since it is run as itself.
 */
export async function uploadHostScript(vm: Pick<VmLike, 'info' | 'volumes' | 'upload'>, script: string, args: readonly string[] = []): Promise<UploadedScript> {
  const host = await hostScriptFile(script);
  const volume = defaultVolume(vm);
  if (!volume) {
    throw new GvmiTestError('transfer.not-in-volume', `${script} is a host file, but the image has no volume to upload it to`, {
      hint: 'a requestor can only send files into volumes: add a VOLUME to the image (e.g. /golem/input)',
    });
  }
  const guest = `${volume}/${basename(host)}`;
  if (!(await startsWithShebang(host))) {
    await vm.upload(host, guest);
    return { host, guest, argv: ['/bin/sh', guest, ...args] };
  }
  const staging = await mkdtemp(join(tmpdir(), 'gvmi-test-script-'));
  try {
    const copy = join(staging, basename(host));
    await copyFile(host, copy);
    await chmod(copy, 0o755);
    await vm.upload(copy, guest);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return { host, guest, argv: [guest, ...args] };
}

/**
 * "Run this script of mine in the image", as a requestor would: the host file is uploaded into
 * the default volume and run there with `args`; the result says what was uploaded, and where.
 */
export async function runHostScript(
  vm: Pick<VmLike, 'info' | 'volumes' | 'upload' | 'exec'>,
  script: string,
  args: readonly string[] = [],
  options: ExecOptions = {},
): Promise<{ result: ExecResult; script: UploadedScript }> {
  const uploaded = await uploadHostScript(vm, script, args);
  return { result: await vm.exec(uploaded.argv, options), script: uploaded };
}
