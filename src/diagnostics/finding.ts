/** A thing gvmi-test noticed that will matter on a provider, with what to do about it. */
import { printable } from '../terminal-safe.js';

export type FindingCode =
  // found in the image itself (inspect, and at run)
  | 'shadowed-files'
  | 'entrypoint-ignored'
  | 'user-dropped'
  | 'no-volumes'
  | 'no-etc'
  | 'no-proc-sys'
  | 'image-large'
  | 'non-amd64'
  | 'workdir-missing'
  // found while running
  | 'overlay-full'
  | 'output-truncated-on-provider'
  | 'image-env-dropped'
  | 'exec-failed'
  | 'image-corrupt'
  | 'killed-by-signal'
  | 'volume-not-in-image'
  // a requestor's deploy volumes (runtime 0.5)
  | 'deploy-volume-full'
  | 'deploy-volume-read-only'
  // outbound access under a manifest: a connection its whitelist refused
  | 'outbound-refused';

export interface Finding {
  code: FindingCode;
  severity: 'error' | 'warning' | 'info';
  message: string;
  fix: string;
  /** Paths concerned, when there are any (for image-env-dropped: the KEY=VALUE entries lost). */
  paths?: string[];
  /** Extra figures (sizes, counts) for --json. */
  details?: Record<string, unknown>;
}

/**
 * How the CLI and the matchers print a finding: one line, the paths, the fix. Messages and paths
 * carry image- and guest-chosen names (a file may be called "x\n  fix: …" or contain ESC), so each
 * is escaped onto its own line.
 */
export function formatFinding(f: Finding, maxPaths = 10): string {
  const lines = [`${f.severity} [${f.code}] ${printable(f.message)}`];
  for (const p of (f.paths ?? []).slice(0, maxPaths)) lines.push(`    ${printable(p)}`);
  if ((f.paths?.length ?? 0) > maxPaths) lines.push(`    … and ${f.paths!.length - maxPaths} more`);
  lines.push(`  fix: ${printable(f.fix)}`);
  return lines.join('\n');
}
