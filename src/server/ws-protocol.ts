/**
 * The WebSocket protocol of `gvmi-test serve` (docs/ws-protocol.md). JSON text frames only:
 * process output and file contents travel base64-encoded inside them, so one framing carries
 * everything, every frame names its request id, and any WebSocket client in any language can
 * speak it (binary frames would need a second header format for ids and kinds).
 */

/** Largest frame accepted from a client (a 1 MiB upload chunk in base64 fits with room). */
export const MAX_FRAME_BYTES = 2 * 1024 * 1024;
/** Download chunks sent to clients. */
export const DOWNLOAD_CHUNK_BYTES = 512 * 1024;

export type ClientMessage =
  | { op: 'exec'; id: string; command: string | string[]; env?: Record<string, string>; cwd?: string; stdin?: boolean; timeoutMs?: number }
  | { op: 'stdin'; id: string; data?: string; eof?: boolean }
  | { op: 'signal'; id: string; signal: string }
  | { op: 'kill'; id: string }
  | { op: 'stats'; id: string }
  | { op: 'info'; id: string }
  | { op: 'upload'; id: string; path: string; data: string; offset: number }
  /** `mode`: the file's permission bits (0o755 for a `#!` script run as itself); 0o600 when absent. */
  | { op: 'upload-end'; id: string; mode?: number }
  | { op: 'download'; id: string; path: string }
  | { op: 'stop'; id: string };

export type ServerMessage =
  | { event: 'started'; id: string }
  | { event: 'stdout' | 'stderr'; id: string; data: string }
  | { event: 'exit'; id: string; exitCode: number | null; signal: string | null; durationMs: number; timedOut: boolean }
  | { event: 'ok'; id: string }
  | { event: 'stats'; id: string; stats: unknown }
  | { event: 'info'; id: string; info: unknown }
  | { event: 'data'; id: string; data: string; offset: number }
  | { event: 'downloaded'; id: string; size: number; mode: number; symlink?: string }
  | { event: 'error'; id?: string; code: string; message: string; hint?: string }
  | { event: 'stopping' };

export const CLIENT_OPS = ['exec', 'stdin', 'signal', 'kill', 'stats', 'info', 'upload', 'upload-end', 'download', 'stop'] as const;

/** Validates a parsed frame's shape; returns an error message or undefined. */
export function validateClientMessage(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'a frame must be a JSON object';
  const m = value as Record<string, unknown>;
  if (typeof m['op'] !== 'string') return 'missing "op"';
  if (!(CLIENT_OPS as readonly string[]).includes(m['op'])) return `unknown op ${JSON.stringify(m['op'])}`;
  if (typeof m['id'] !== 'string' || m['id'] === '' || m['id'].length > 200) return '"id" must be a non-empty string';
  const str = (k: string): boolean => typeof m[k] === 'string';
  switch (m['op']) {
    case 'exec': {
      const c = m['command'];
      const ok = typeof c === 'string' ? c.length > 0 : Array.isArray(c) && c.length > 0 && c.every((x) => typeof x === 'string');
      if (!ok) return '"command" must be a string or a non-empty array of strings';
      if (m['env'] !== undefined && (typeof m['env'] !== 'object' || m['env'] === null || Object.values(m['env']).some((v) => typeof v !== 'string'))) return '"env" must map names to strings';
      if (m['cwd'] !== undefined && !str('cwd')) return '"cwd" must be a string';
      if (m['timeoutMs'] !== undefined && (typeof m['timeoutMs'] !== 'number' || m['timeoutMs'] <= 0)) return '"timeoutMs" must be a positive number';
      return undefined;
    }
    case 'stdin':
      return m['data'] !== undefined && !str('data') ? '"data" must be base64' : undefined;
    case 'signal':
      return str('signal') ? undefined : '"signal" must be a signal name';
    case 'upload':
      if (!str('path') || !str('data')) return '"path" and "data" (base64) are required';
      return Number.isSafeInteger(m['offset']) && (m['offset'] as number) >= 0 ? undefined : '"offset" must be an integer >= 0';
    case 'upload-end':
      return m['mode'] === undefined || (Number.isInteger(m['mode']) && (m['mode'] as number) >= 0 && (m['mode'] as number) <= 0o777)
        ? undefined : '"mode" must be permission bits, an integer from 0 to 511 (0o777)';
    case 'download':
      return str('path') ? undefined : '"path" is required';
    default:
      return undefined;
  }
}
