/** Where a command writes: injectable so the program can be driven in-process by tests. */
import { printableBlock } from '../terminal-safe.js';

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

export const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };

/**
 * How gvmi-test prints its own lines. Much of what it prints comes from the image or the guest, so
 * control characters are escaped here whatever the caller did (printableBlock: \n stays, so
 * JSON and multi-line blocks print as they are). Fields that must stay on one line are escaped
 * with `printable` before they are put in the line. A guest command's own output does not come
 * through here: it is passed through byte for byte.
 */
export function writeLine(stream: NodeJS.WritableStream, line = ''): void {
  stream.write(`${printableBlock(line)}\n`);
}

export { formatBytes } from '../format-bytes.js';
