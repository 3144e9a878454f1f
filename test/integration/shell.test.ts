/**
 * `gvmi-test shell` through a real terminal: tmux types the keys and reads the screen.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';

const hasTmux = (() => {
  try {
    execFileSync('tmux', ['-V']);
    return true;
  } catch {
    return false;
  }
})();
const session = `gvmi-shell-${process.pid}`;
const tmux = (...args: string[]): string => execFileSync('tmux', args, { encoding: 'utf8' });
const screenOf = (name: string): string => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', name);

/** Polls a tmux session's screen until `what` shows. */
async function waitOn(name: string, what: RegExp, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = screenOf(name);
    if (what.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const waitFor = (what: RegExp): Promise<string> => waitOn(session, what);

describe.runIf(hasTmux)('gvmi-test shell in a terminal', () => {
  afterAll(() => {
    try {
      tmux('kill-session', '-t', session);
    } catch { /* already gone */ }
  });

  it('runs lines, shows failures, interrupts with Ctrl-C, quits with Ctrl-D', async () => {
    const command = `node ${resolve('dist/cli/main.js')} shell ${inject('tinyImage')}; echo SHELL-EXITED-$?; sleep 60`;
    tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '50', command);

    let text = await waitFor(/golem ▶ $/m);
    expect(text).toMatch(/volume \/golem\/input -> \/\S+/);
    expect(text).toMatch(/volume \/golem\/output -> \/\S+/);

    tmux('send-keys', '-t', session, 'echo hello-from-the-guest; hostname', 'Enter');
    text = await waitFor(/hello-from-the-guest\n\(none\)\ngolem ▶ $/m); // runtime 0.4 sets no hostname

    tmux('send-keys', '-t', session, 'exit 3', 'Enter');
    await waitFor(/command failed with code 3\ngolem ▶ $/m);

    tmux('send-keys', '-t', session, 'echo started-sleeping; sleep 100', 'Enter');
    await waitFor(/^started-sleeping$/m); // the output line, not the typed one
    tmux('send-keys', '-t', session, 'C-c');
    await waitFor(/command (killed by SIGINT|failed with code 130)\ngolem ▶ $/m);

    tmux('send-keys', '-t', session, 'echo the VM survived', 'Enter');
    await waitFor(/the VM survived\ngolem ▶ $/m);

    tmux('send-keys', '-t', session, 'C-d');
    text = await waitFor(/SHELL-EXITED-\d+/);
    expect(text).toContain('gvmi-test shell: shutting down');
    expect(text).toContain('SHELL-EXITED-0');
  }, 120_000);
});

describe.runIf(hasTmux)('gvmi-test shell --tty', () => {
  const ttySession = `${session}-tty`;
  const waitForTty = (what: RegExp): Promise<string> => waitOn(ttySession, what);
  afterAll(() => {
    try {
      tmux('kill-session', '-t', ttySession);
    } catch { /* already gone */ }
  });

  it('is a real terminal: tty, window size, Ctrl-C to the foreground job, job control', async () => {
    const command = `node ${resolve('dist/cli/main.js')} shell --tty ${inject('tinyImage')}; echo TTY-EXITED-$?; sleep 60`;
    tmux('new-session', '-d', '-s', ttySession, '-x', '132', '-y', '40', command);
    await waitForTty(/# $/m);
    tmux('send-keys', '-t', ttySession, 'tty; stty size', 'Enter');
    await waitForTty(/\/dev\/pts\/\d+\n40 132\n/);
    tmux('send-keys', '-t', ttySession, 'sleep 100', 'Enter');
    await new Promise((r) => setTimeout(r, 500));
    tmux('send-keys', '-t', ttySession, 'C-c');
    tmux('send-keys', '-t', ttySession, 'echo after-interrupt', 'Enter');
    await waitForTty(/^after-interrupt$/m);
    tmux('send-keys', '-t', ttySession, 'sleep 50 &', 'Enter');
    tmux('send-keys', '-t', ttySession, 'jobs', 'Enter');
    await waitForTty(/\[1\]\+? +Running +sleep 50/);
    tmux('send-keys', '-t', ttySession, 'exit', 'Enter');
    const text = await waitForTty(/TTY-EXITED-\d+/);
    expect(text).toContain('TTY-EXITED-0');
  }, 120_000);
});
