/**
 * The control channel of a network served by `gvmi-test network start`: JSON lines over its Unix
 * socket. A client sends requests `{ id, op, ... }`; the network answers each, in order, with
 * `{ id, ok: true, ... }` or `{ id, ok: false, error: { code, message, hint? } }`.
 *
 *   describe                          -> { network: NetworkDescription }
 *   join { ip?, name? }               -> { node: JoinedNode }    (the VM's place; ports on 127.0.0.1)
 *   forward { ip, port, hostPort? }   -> { forward: Forward }
 *
 * What a connection joined or forwarded lasts as long as the connection: when it closes (the VM
 * stopped, its process died, `network forward` ended) the address is given back and the forwards
 * end. So a process that dies without a word frees what it held.
 */
import type { Socket } from 'node:net';
import { ERROR_CODES, GvmiTestError, type ErrorCode } from '../errors.js';
import type { Forward, VpnNode } from './vpn-network.js';

/** Longer lines are refused: a request is a few hundred bytes. */
export const MAX_LINE_BYTES = 64 * 1024;

export type ControlRequest =
  | { id: number; op: 'describe' }
  | { id: number; op: 'join'; ip?: string; name?: string }
  | { id: number; op: 'forward'; ip: string; port: number; hostPort?: number };

export interface NetworkDescription {
  name: string;
  /** 192.168.7.0/24 */
  ip: string;
  requestorIp: string;
  /** The network process. */
  pid: number;
  nodes: { ip: string; name?: string }[];
  forwards: Forward[];
}

/** A VpnNode as it crosses the socket: all of it but leave(), which is closing the connection. */
export type JoinedNode = Omit<VpnNode, 'leave'>;

export interface ControlError {
  code: ErrorCode;
  message: string;
  hint?: string;
}

export type ControlReply = { id: number; ok: true; [field: string]: unknown } | { id: number; ok: false; error: ControlError };

/** Calls `onLine` for every complete line that arrives on `socket`; a line too long ends it. */
export function readLines(socket: Socket, onLine: (line: string) => void): void {
  let pending = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    pending += chunk;
    let end: number;
    while ((end = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      if (line.trim() !== '') onLine(line);
    }
    if (Buffer.byteLength(pending) > MAX_LINE_BYTES) socket.destroy();
  });
}

export function writeMessage(socket: Socket, message: object): void {
  if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
}

/** An error from the other side as this side's own: a known code is kept, anything else is `internal`. */
export function errorFromReply(error: ControlError | undefined, fallback: string): GvmiTestError {
  const code = error && (ERROR_CODES as readonly string[]).includes(error.code) ? error.code : 'internal';
  return new GvmiTestError(code, error?.message ?? fallback, error?.hint ? { hint: error.hint } : {});
}
