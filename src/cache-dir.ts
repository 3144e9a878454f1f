/** Where gvmi-test keeps costly artefacts (kernel, runtime, snapshots): shared with runtime/build.sh. */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cacheDir(): string {
  return process.env['GVMI_TEST_CACHE'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'gvmi-test');
}
