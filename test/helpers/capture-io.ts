import { PassThrough } from 'node:stream';

/** A CliIo whose stdout and stderr are collected, for driving the CLI in-process (runCli). */
export function capture(stdin: NodeJS.ReadableStream & { isTTY?: boolean } = new PassThrough()) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => { out += d.toString(); });
  stderr.on('data', (d: Buffer) => { err += d.toString(); });
  return { io: { stdout, stderr, stdin }, out: () => out, err: () => err };
}
