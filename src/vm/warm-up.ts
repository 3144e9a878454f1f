/**
 * Before a booted VM's state is saved, the image's shell is run once (`/bin/sh -c :`), so that the
 * snapshot holds its pages (and, for dynamically linked images, the loader and libc) in the page
 * cache. Every VM restored later then skips reading and decompressing them from the squashfs on
 * its first command: measured under TCG, the restored first command costs ~0.06 s less. Nothing
 * of it is visible to the requestor but a higher next PID; an image without /bin/sh is fine.
 */
import type { AgentClient } from '../agent/agent-client.js';

const WARM_UP_LIMIT_MS = 5000;

export async function warmUpImageShell(client: AgentClient, imageEnv: readonly string[]): Promise<void> {
  let id: bigint;
  try {
    id = await client.runProcess({ argv: ['/bin/sh', '-c', ':'], env: imageEnv });
  } catch {
    return; // no /bin/sh (or not executable): nothing to warm
  }
  let onDied: ((processId: bigint) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve) => {
      onDied = (processId) => { if (processId === id) resolve(); };
      client.on('died', onDied);
      client.claimProcess(id);
      // A shell that does not return at once is not worth waiting for.
      timer = setTimeout(() => { void client.kill(id).catch(() => {}); resolve(); }, WARM_UP_LIMIT_MS);
    });
  } finally {
    clearTimeout(timer);
    if (onDied) client.off('died', onDied);
  }
}
