import { execFileSync } from 'node:child_process';

/** Whether `command --version` runs here (for it.skipIf on tools a test needs, e.g. musl-gcc). */
export function hasCommand(command: string): boolean {
  try {
    execFileSync(command, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
