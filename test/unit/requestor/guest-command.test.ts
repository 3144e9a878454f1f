import { describe, expect, it } from 'vitest';
import { guestArgv } from '../../../src/requestor/guest-command.js';

describe('guestArgv: a requestor\'s command as a provider runs it', () => {
  it('one word holding a space is a command line: /bin/sh -c, as golem-js run("…") sends it', () => {
    expect(guestArgv(['ls -l /golem/input'])).toEqual(['/bin/sh', '-c', 'ls -l /golem/input']);
    expect(guestArgv(['echo\thi'])).toEqual(['/bin/sh', '-c', 'echo\thi']);
  });

  it('several words, or one without a space, are argv, run as given (no shell, no PATH search)', () => {
    expect(guestArgv(['/bin/echo', 'a b'])).toEqual(['/bin/echo', 'a b']);
    expect(guestArgv(['/bin/true'])).toEqual(['/bin/true']);
    expect(guestArgv(['ls'])).toEqual(['ls']);
  });

  it('gives a copy: the caller\'s words are not the argv that may be changed later', () => {
    const words = ['/bin/true'];
    const argv = guestArgv(words);
    argv.push('x');
    expect(words).toEqual(['/bin/true']);
  });
});
