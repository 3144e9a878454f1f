/** Provider traps that show in the image itself, before anything runs (used by `inspect`). */
import type { Finding } from '../diagnostics/finding.js';
import type { ImageMetadata } from './container-config.js';
import type { SquashfsEntry } from './squashfs-listing.js';

const LARGE_IMAGE_BYTES = 1024 * 1024 * 1024;

/** Longest volume containing `path`, if any (provider semantics for transfers, too). */
export function volumeOf(volumes: readonly string[], path: string): string | undefined {
  let best: string | undefined;
  for (const v of volumes) {
    const inside = v === '/' || path === v || path.startsWith(`${v}/`);
    if (inside && (best === undefined || v.length > best.length)) best = v;
  }
  return best;
}

/** Entries baked under a VOLUME path: the empty host directory mounted there hides them. */
export function shadowedEntries(metadata: ImageMetadata, entries: readonly SquashfsEntry[]): SquashfsEntry[] {
  return entries.filter((e) => {
    const v = volumeOf(metadata.volumes, e.path);
    return v !== undefined && e.path !== v && e.type !== 'dir';
  });
}

export function staticFindings(metadata: ImageMetadata, entries: readonly SquashfsEntry[], fileSize: number): Finding[] {
  const findings: Finding[] = [];
  const shadowed = shadowedEntries(metadata, entries);
  if (shadowed.length > 0) {
    findings.push({
      code: 'shadowed-files',
      severity: 'warning',
      message: `${shadowed.length} file(s) baked under a VOLUME path will be hidden at run time: a provider mounts an empty directory over each volume`,
      fix: 'move these files out of the volume paths (e.g. /golem/resources) or send them as inputs at run time',
      paths: shadowed.map((e) => e.path),
    });
  }
  if (metadata.entrypoint.length > 0 || metadata.cmd.length > 0) {
    const what = [metadata.entrypoint.length ? `ENTRYPOINT ${JSON.stringify(metadata.entrypoint)}` : '', metadata.cmd.length ? `CMD ${JSON.stringify(metadata.cmd)}` : '']
      .filter(Boolean).join(' and ');
    findings.push({
      code: 'entrypoint-ignored',
      severity: 'warning',
      message: `${what} will not run: providers ignore them unless the requestor starts the activity with start-entrypoint`,
      fix: 'run the program explicitly from the requestor script (e.g. /bin/sh -c "…")',
    });
  }
  if (metadata.user !== '') {
    // ya-runtime-vm honours exactly `uid:gid` (deploy.rs parse_user), else runs as root; and
    // gvmkit-build 0.3 drops USER when converting, so even that holds only for other converters.
    const honoured = /^\s*\d+:\d+\s*$/.test(metadata.user);
    findings.push({
      code: 'user-dropped',
      severity: 'warning',
      message: honoured
        ? `USER ${JSON.stringify(metadata.user)}: providers run commands as ${metadata.user.trim()} (and so does gvmi-test), but gvmkit-build 0.3 drops USER, so an image it converted runs as root`
        : `USER ${JSON.stringify(metadata.user)} is not numeric uid:gid, so providers run commands as root (0:0), and so does gvmi-test`,
      fix: 'do not rely on USER; switch users in your command if you must (e.g. su or setpriv)',
    });
  }
  if (metadata.volumes.length === 0) {
    findings.push({
      code: 'no-volumes',
      severity: 'warning',
      message: 'the image declares no VOLUME: a requestor can neither send nor fetch files',
      fix: 'add e.g. VOLUME /golem/input /golem/output (or --volume when building with gvmi-test)',
    });
  }
  // A provider's init mounts /proc and /sys without creating them (ya-runtime-vm init.c
  // v0.4.2:2215-2223, v0.5.2:2855-2863): without either its VM stops at boot. Images that went
  // through Docker (gvmkit-build, gvmi-test build) always have both (Docker's init layer).
  const missingMounts = ['/proc', '/sys'].filter((d) => !entries.some((e) => e.path === d && (e.type === 'dir' || e.type === 'symlink')));
  if (missingMounts.length > 0) {
    findings.push({
      code: 'no-proc-sys',
      severity: 'error',
      message: `the image has no ${missingMounts.join(' and no ')} directory: a provider's init mounts /proc and /sys there without creating them, so its VM stops at boot`,
      fix: 'add them to the image (RUN mkdir -p /proc /sys), or build it with gvmkit-build or gvmi-test build, which add both as Docker does',
      paths: missingMounts,
    });
  }
  if (!entries.some((e) => e.path === '/etc' && e.type === 'dir')) {
    findings.push({
      code: 'no-etc',
      severity: 'error',
      message: 'the image has no /etc directory: a provider\'s init appends to /etc/hosts and rewrites /etc/resolv.conf, and fails to boot without it',
      fix: 'create /etc in the image (RUN mkdir -p /etc, or mkdir etc in the root directory)',
    });
  }
  const workdir = workdirFinding(metadata, entries);
  if (workdir) findings.push(workdir);
  if (fileSize > LARGE_IMAGE_BYTES) {
    findings.push({
      code: 'image-large',
      severity: 'info',
      message: `the image is ${(fileSize / 1024 / 1024).toFixed(0)} MiB: providers download it before the first run`,
      fix: 'trim the image (multi-stage build, fewer packages) or build with --compression xz or zstd',
    });
  }
  return findings;
}

/** Where a path leads in the image: a directory, or the first component that is missing or not one. */
export type ImagePathState =
  | { kind: 'dir'; resolved: string }
  | { kind: 'missing'; at: string }
  | { kind: 'not-dir'; at: string }
  | { kind: 'loop'; at: string };

/** Symbolic links followed before giving up, as the kernel's MAXSYMLINKS. */
const MAX_SYMLINKS = 40;

/**
 * Resolves `path` inside the image as the guest does (init chroots into it: an absolute link target
 * starts again at the image root), one component at a time.
 */
export function resolveImageDir(entries: readonly SquashfsEntry[], path: string): ImagePathState {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const pending = path.split('/').filter((p) => p !== '' && p !== '.');
  let resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = `/${[...resolved, part].join('/')}`;
    const entry = byPath.get(candidate);
    if (!entry) return { kind: 'missing', at: candidate };
    if (entry.type === 'symlink') {
      if (++links > MAX_SYMLINKS) return { kind: 'loop', at: candidate };
      const target = entry.linkTarget ?? '';
      if (target.startsWith('/')) resolved = [];
      pending.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
      continue;
    }
    if (entry.type !== 'dir') return { kind: 'not-dir', at: candidate };
    resolved.push(part);
  }
  return { kind: 'dir', resolved: `/${resolved.join('/')}` };
}

/** Made or mounted by the init at boot, whatever the image holds (or needed by it before any run). */
const BOOT_DIRS = ['/dev', '/proc', '/sys', '/tmp'];

/**
 * WORKDIR that will not exist on a provider. Every process starts with chdir(WORKDIR) (a provider
 * always sends the image's WorkingDir), and since ya-runtime-vm 0.4 a failed chdir reaches the
 * requestor only as exit code 9, for every command. It exists at run time when the image has it
 * (through symbolic links too), when it is a volume or on the way to one (mounting a volume makes
 * its path), or when the init makes it at boot; a directory inside a volume never does, as the
 * volume is an empty host directory.
 */
export function workdirFinding(metadata: ImageMetadata, entries: readonly SquashfsEntry[]): Finding | undefined {
  const raw = metadata.workingDir;
  const workdir = `/${raw.split('/').filter((p) => p !== '' && p !== '.').join('/')}`;
  if (workdir === '/' || workdir.split('/').includes('..')) return undefined;
  if (BOOT_DIRS.some((d) => workdir === d || workdir.startsWith(`${d}/`))) return undefined;
  const runsEvery = 'a provider starts every command there, and a failed chdir reaches the requestor only as exit code 9 (every run fails with 9)';
  const volume = volumeOf(metadata.volumes, workdir);
  if (volume === workdir) return undefined;
  if (volume !== undefined) {
    return {
      code: 'workdir-missing',
      severity: 'error',
      message: `WORKDIR ${raw} is inside VOLUME ${volume}, which a provider mounts as an empty directory, so it does not exist at run time: ${runsEvery}`,
      fix: `set WORKDIR to a directory outside the volumes (e.g. /golem/work, created in the image) or to ${volume} itself`,
      paths: [raw],
      details: { workdir: raw, volume },
    };
  }
  if (metadata.volumes.some((v) => v.startsWith(`${workdir}/`))) return undefined;
  const state = resolveImageDir(entries, workdir);
  if (state.kind === 'dir') return undefined;
  const why = state.kind === 'missing'
    ? (state.at === workdir ? 'the image has no such directory' : `the image has no ${state.at}`)
    : state.kind === 'not-dir' ? `${state.at} is not a directory in the image` : `symbolic links at ${state.at} loop`;
  return {
    code: 'workdir-missing',
    severity: 'error',
    message: `WORKDIR ${raw} does not exist (${why}): ${runsEvery}`,
    fix: `create it in the image (RUN mkdir -p ${workdir}; a Dockerfile WORKDIR line creates it, unless a later step removes it), or change WORKDIR (gvmi-test build --workdir)`,
    paths: [raw],
    details: { workdir: raw, missing: state.at },
  };
}
