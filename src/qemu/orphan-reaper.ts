/**
 * Ends a QEMU whose host process died, whatever the guest does. The guest cannot be trusted to
 * power off when its channel closes (a guest that starves its agent keeps running; a guest that
 * waits for its host, as a provider's does, waits for ever), and a parent-death signal does not
 * survive QEMU's -runas (setuid clears it). So each QEMU gets a watcher: a small /bin/sh in its
 * own session (a Ctrl-C or a kill of the host's process group does not reach it) reading a pipe
 * whose only writer is the host. When the host stops QEMU itself it says so on the pipe and the
 * watcher leaves; end of input means the host is gone, and the watcher kills QEMU (checking its
 * start time, so a reused pid is never hit) and removes the VM's temporary directories.
 *
 * The watcher runs as root when gvmi-test does, so it looks nothing up in the caller's PATH (a
 * directory planted there would run as root): PATH is the system's. It removes nothing until QEMU
 * is confirmed gone (the guest can then no longer race the removal); each directory is first
 * taken back with `chown -h` (QEMU's user may then no longer rename it or put a link in its
 * place) and skipped if it is a link; GNU `rm -rf` does the rest without following links.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';

export const WATCHER = `
trap '' INT TERM HUP QUIT PIPE
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
IFS=' ' read -r pid start || exit 0
case $pid in ''|*[!0-9]*) exit 0 ;; esac
# A second line: the host ended QEMU itself. End of input: the host is gone.
if read -r _; then exit 0; fi
alive() {
  s=$(cat /proc/"$pid"/stat 2>/dev/null) || return 1
  s=\${s##*) }
  set -- $s
  [ "$1" != Z ] && [ "\${20}" = "$start" ]
}
if alive; then
  kill -KILL "$pid" 2>/dev/null
  n=0
  while alive && [ $n -lt 200 ]; do sleep 0.05; n=$((n + 1)); done
fi
# Nothing is removed while QEMU may still be there: only once it is gone does nothing of the
# guest race the removal.
alive && exit 0
uid=$(id -u)
for d in "$@"; do
  # Taken back first (chown -h never follows): QEMU's user may no longer rename it in the sticky
  # temporary directory, so a link put in its place afterwards is impossible; a link already
  # there is left alone. GNU rm -rf then walks by descriptors (fts, O_NOFOLLOW) and never follows
  # a link inside.
  if [ "$uid" = 0 ]; then chown -h 0:0 -- "$d" 2>/dev/null || continue; fi
  if [ -d "$d" ] && [ ! -L "$d" ]; then
    chmod 700 -- "$d" 2>/dev/null
    rm -rf -- "$d"
  fi
done
exit 0
`;

/** The kernel's start time of `pid` (field 22 of /proc/<pid>/stat), to tell it from a later process with the same pid. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export interface OrphanReaper {
  /** Hands the watcher QEMU's pid (call right after the spawn). */
  watch(pid: number): void;
  /** QEMU has ended (or will be ended) by the host: the watcher leaves without touching anything. */
  release(): void;
}

/** @param removeOnHostDeath directories the host would have removed at stop */
export function startOrphanReaper(removeOnHostDeath: readonly string[]): OrphanReaper {
  let child: ChildProcess | undefined;
  let stdin: Writable | undefined;
  try {
    child = spawn('/bin/sh', ['-c', WATCHER, 'gvmi-test-reaper', ...removeOnHostDeath], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    child.once('error', () => {});
    stdin = child.stdin ?? undefined;
    stdin?.on('error', () => {});
    // Neither the watcher nor its pipe may keep this process alive.
    child.unref();
    (stdin as unknown as { unref?: () => void } | undefined)?.unref?.();
  } catch {
    child = undefined;
  }
  let released = false;
  return {
    watch(pid) {
      const start = processStartTime(pid);
      if (start && !released) stdin?.write(`${pid} ${start}\n`);
    },
    release() {
      if (released) return;
      released = true;
      stdin?.end('done\n');
    },
  };
}
