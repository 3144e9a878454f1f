/**
 * How a requestor's command becomes the argv a provider runs. A provider runs BIN as given, with
 * no PATH search; golem-js's `exe.run("ls -l /")` sends `/bin/sh -c "ls -l /"`. So one word
 * holding a space (a command line as a string) runs through /bin/sh -c, the way a requestor's
 * string does; several words are argv, run as given — `ls` alone is not found on a provider
 * either, and gvmi-test says why (the exec-failed finding).
 */
export function guestArgv(words: readonly string[]): string[] {
  if (words.length === 1 && /\s/.test(words[0]!)) return ['/bin/sh', '-c', words[0]!];
  return [...words];
}
