/**
 * A process a provider could not start: since ya-runtime-vm 0.4 the guest closes its status pipe
 * before chdir and execve, so a missing program, a missing `#!` interpreter, a file that is not
 * executable or a missing working directory reaches the requestor only as "exit code 9"
 * (reference §2, §8). gvmi-test's agent tells the host the real step and errno (an extension); this
 * turns them into what the author should know and do.
 */
import { errnoName } from '../agent/errno.js';
import { ExecStep } from '../agent/protocol.js';
import type { Finding } from './finding.js';

export interface ExecFailureFacts {
  /** proto.h enum exec_step */
  step: number;
  errno: number;
  argv: readonly string[];
  cwd: string;
  /** The `#!` line of the program when the host could read it (a file in a volume), else undefined. */
  shebang?: string;
}

export const STEP_NAMES: Record<number, string> = {
  [ExecStep.CHDIR]: 'chdir',
  [ExecStep.SETGID]: 'setresgid',
  [ExecStep.SETUID]: 'setresuid',
  [ExecStep.EXECVE]: 'execve',
};

const PROVIDER_SEES = 'a provider answers the run with OK and the process then dies with exit code 9: the requestor sees nothing else';

export function execFailureFinding(facts: ExecFailureFacts): Finding {
  const program = facts.argv[0] ?? '';
  const errno = errnoName(facts.errno);
  const { message, fix } = explain(facts, program, errno);
  return {
    code: 'exec-failed',
    severity: 'error',
    message: `${message} (${STEP_NAMES[facts.step] ?? `step ${facts.step}`}: ${errno}); ${PROVIDER_SEES}`,
    fix,
    details: { step: STEP_NAMES[facts.step] ?? facts.step, errno: facts.errno, errnoName: errno, argv: [...facts.argv], cwd: facts.cwd, exitCodeOnProvider: 9 },
  };
}

function explain(facts: ExecFailureFacts, program: string, errno: string): { message: string; fix: string } {
  if (facts.step === ExecStep.CHDIR) {
    return {
      message: `the working directory ${facts.cwd} does not exist in the image (or is not a directory)`,
      fix: `create it in the image (e.g. RUN mkdir -p ${facts.cwd}, or a WORKDIR line), or run with another working directory`,
    };
  }
  if (facts.step !== ExecStep.EXECVE) {
    return { message: `${program} could not take the requested user or group`, fix: 'run as root (a provider honours only numeric uid:gid), or check the ids exist' };
  }
  if (errno === 'ENOENT' && !program.includes('/')) {
    return {
      message: `${program} is not a path: a provider passes the program to execve as given, with no PATH search`,
      fix: `give the absolute path (e.g. /bin/${program} or /usr/bin/${program}), or run it through a shell (the CLI: quote the command as one word, '${program} …'; the library: a string command, or ['/bin/sh', '-c', '${program} …'])`,
    };
  }
  if (errno === 'ENOENT') {
    const interpreter = facts.shebang?.replace(/^#!\s*/, '').split(/\s+/)[0];
    if (interpreter) {
      return {
        message: `${program} exists, but the interpreter its #! line names (${interpreter}) is not in the image`,
        fix: `install ${interpreter} in the image, or change the #! line to an interpreter the image has`,
      };
    }
    return {
      message: `${program} is not in the image (or it is a script whose #! interpreter is missing)`,
      fix: 'check the path inside the image (gvmi-test inspect lists its files), and the #! line of a script',
    };
  }
  if (errno === 'EACCES') {
    return { message: `${program} is not executable (or a directory on its path is not searchable)`, fix: `chmod +x ${program} in the image (or before uploading it), or run it through its interpreter` };
  }
  if (errno === 'ENOEXEC') {
    return { message: `${program} is not something this kernel can run: another architecture, or a script without a #! line`, fix: 'build the image for linux/amd64, or add a #! line (or run it as /bin/sh script)' };
  }
  return { message: `${program} could not be started`, fix: 'check the program, its permissions and its interpreter inside the image' };
}
