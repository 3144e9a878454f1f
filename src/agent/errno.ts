/** Linux errno values the guest returns, with what they mean for an image author. */
const ERRNO: Record<number, [name: string, explanation: string]> = {
  1: ['EPERM', 'operation not permitted'],
  2: ['ENOENT', 'no such file or directory'],
  3: ['ESRCH', 'no such process'],
  4: ['EINTR', 'interrupted'],
  5: ['EIO', 'input/output error'],
  7: ['E2BIG', 'argument list or message too long'],
  8: ['ENOEXEC', 'not an executable this kernel can run (wrong architecture, or a script without #!)'],
  9: ['EBADF', 'bad file descriptor'],
  11: ['EAGAIN', 'resource temporarily unavailable'],
  12: ['ENOMEM', 'out of memory'],
  13: ['EACCES', 'permission denied (not executable, or a directory is not searchable)'],
  16: ['EBUSY', 'device or resource busy'],
  17: ['EEXIST', 'file exists'],
  20: ['ENOTDIR', 'a path component is not a directory'],
  21: ['EISDIR', 'is a directory'],
  22: ['EINVAL', 'invalid argument'],
  24: ['EMFILE', 'too many open files'],
  26: ['ETXTBSY', 'text file busy'],
  28: ['ENOSPC', 'no space left on device'],
  30: ['EROFS', 'read-only file system'],
  32: ['EPIPE', 'broken pipe'],
  36: ['ENAMETOOLONG', 'file name too long'],
  40: ['ELOOP', 'too many levels of symbolic links'],
  71: ['EPROTO', 'protocol error (the agent did not understand the request)'],
  93: ['EPROTONOSUPPORT', 'not supported by this agent'],
  110: ['ETIMEDOUT', 'timed out'],
};

export function errnoName(errno: number): string {
  return ERRNO[errno]?.[0] ?? `errno ${errno}`;
}

export function errnoExplanation(errno: number): string {
  return ERRNO[errno]?.[1] ?? 'unknown error';
}

export function describeErrno(errno: number): string {
  return `${errnoName(errno)}: ${errnoExplanation(errno)}`;
}
