/**
 * Why a VM did not start, or ended on its own: boot and crash errors explained from the guest
 * console (init's GVMI-INIT-FATAL, kernel panics, image read errors, the agent's provider-stop
 * line) and QEMU's own words on stderr.
 */
import { GvmiTestError } from '../errors.js';
import { consoleTail, explainInitFailure, findImageErrors, findKernelPanic, parseAgentStop, parseInitFailure, readConsole } from './console-log.js';
import { imageDamageHint } from '../diagnostics/image-damage.js';

/** QEMU's own last lines, for a hint ("QEMU said: …"). */
function qemuSaid(qemuStderr: string | undefined): string | undefined {
  const text = qemuStderr?.trim();
  return text ? `QEMU said: ${text.split('\n').slice(-3).join(' | ')}` : undefined;
}

/** A kernel panic's advice: what the panic line itself does not say. */
function explainPanic(panic: string): string {
  return /out of memory|deadlocked on memory|\boom\b/i.test(panic)
    ? `the guest ran out of memory (${panic}): give it more (--memory, or memory in startVm)`
    : `the guest kernel panicked: ${panic}`;
}

export async function crashError(consoleLog: string, exit: string | number, qemuStderr?: string): Promise<GvmiTestError> {
  const text = await readConsole(consoleLog);
  const stop = parseAgentStop(text);
  if (stop) {
    // Upstream's init dies on the same request: on a provider the VM is gone, and the requestor
    // sees only that its activity ended.
    return new GvmiTestError('vm.stopped-like-provider', `a provider's VM would stop here: ${stop.reason}`, {
      hint: stop.reason === 'the entrypoint exited'
        ? 'the entrypoint (start-entrypoint) ended; upstream then kills every process and powers the VM off'
        : 'the guest agent received a request upstream\'s runtime does not survive; gvmi-test stops the VM as a provider would',
      details: { consoleTail: await consoleTail(consoleLog, 25), agentStop: stop.line },
    });
  }
  const panic = findKernelPanic(text);
  const said = qemuSaid(qemuStderr);
  const damage = findImageErrors(text);
  return new GvmiTestError('vm.crashed', `the guest crashed: ${panic ?? `QEMU exited (${exit})`}`, {
    hint: [
      damage.length > 0 ? imageDamageHint(damage) : undefined,
      panic ? `${explainPanic(panic)}; the console tail below shows what led to it` : said ? undefined : 'QEMU ended unexpectedly (killed from outside, or out of host memory?)',
      said,
    ].filter(Boolean).join('; '),
    details: { consoleTail: await consoleTail(consoleLog, 25), ...(qemuStderr ? { qemuStderr } : {}) },
  });
}

export async function bootError(code: 'vm.boot-failed' | 'vm.boot-timeout', message: string, consoleLog: string, qemuStderr: string): Promise<GvmiTestError> {
  const consoleText = await readConsole(consoleLog);
  const initFailure = parseInitFailure(consoleText);
  const panic = findKernelPanic(consoleText);
  // QEMU's own words go with every boot error, whatever else explains it.
  const damage = findImageErrors(consoleText);
  const hint = [
    damage.length > 0 ? imageDamageHint(damage) : undefined,
    initFailure ? explainInitFailure(initFailure) : panic ? explainPanic(panic) : undefined,
    qemuSaid(qemuStderr),
  ].filter(Boolean).join('; ');
  return new GvmiTestError(code, message, {
    ...(hint ? { hint } : {}),
    details: { consoleTail: await consoleTail(consoleLog, 25), ...(initFailure ? { initFailure } : {}), ...(qemuStderr ? { qemuStderr } : {}) },
  });
}

/**
 * Every boot error carries what QEMU wrote on stderr (details.qemuStderr, and "QEMU said: …" in
 * the hint), whichever step it came from.
 */
export function withQemuStderr(error: unknown, qemuStderr: string): unknown {
  if (!(error instanceof GvmiTestError) || !qemuStderr.trim() || error.details?.['qemuStderr'] !== undefined) return error;
  const hint = [error.hint, qemuSaid(qemuStderr)].filter(Boolean).join('; ');
  return new GvmiTestError(error.code, error.message, { hint, details: { ...error.details, qemuStderr }, cause: error.cause ?? error });
}
