/**
 * A VpnNetwork served to the other gvmi-test processes of this user (`gvmi-test network start`):
 * its control socket (network-control-protocol.ts) in the private sockets directory. The same
 * VpnNetwork object does the work as in a library user's process; this only carries its calls
 * over the socket and ties what each connection holds (nodes, forwards) to that connection.
 */
import { once } from 'node:events';
import { chmod, lstat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { GvmiTestError } from '../errors.js';
import { readLines, writeMessage, type ControlReply, type ControlRequest, type NetworkDescription } from './network-control-protocol.js';
import { networkSocketPath, trustedNetworkSocketsDir } from './network-sockets-dir.js';
import type { Forward, VpnNetwork, VpnNode } from './vpn-network.js';

/** What the network process may want to tell its user. */
export interface NetworkEvents {
  joined?(node: { ip: string; name?: string }): void;
  left?(node: { ip: string; name?: string }): void;
  forwarded?(forward: Forward): void;
  unforwarded?(forward: Forward): void;
}

/** Whether something answers on `path` (a live network), as opposed to a socket left by a dead one. */
async function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class NetworkControlServer {
  private readonly connections = new Set<Socket>();
  private closed = false;

  private constructor(private readonly server: Server, readonly name: string, readonly socketPath: string, private readonly network: VpnNetwork) {}

  /** Serves `network` as `name`; refused when a live network has that name. */
  static async start(network: VpnNetwork, name: string, events: NetworkEvents = {}): Promise<NetworkControlServer> {
    const dir = await trustedNetworkSocketsDir();
    const path = networkSocketPath(dir, name);
    const existing = await lstat(path).catch(() => undefined);
    if (existing) {
      if (await answers(path)) {
        throw new GvmiTestError('network.name-taken', `a network named ${name} is already running`, { hint: 'stop it, or give this one another --name' });
      }
      // Left by a network process that died: ours (the directory is ours alone), and dead.
      if (!existing.isSocket()) throw new GvmiTestError('setup.unsafe-runtime-dir', `${path} is there and is not a socket`, { hint: `rm ${path}` });
      await unlink(path);
    }
    const server = createServer();
    const control = new NetworkControlServer(server, name, path, network);
    server.on('connection', (socket) => control.accept(socket, events));
    server.listen(path);
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([error]) => { throw error; })]);
    await chmod(path, 0o600);
    return control;
  }

  describe(): NetworkDescription {
    return {
      name: this.name, ip: this.network.ip, requestorIp: this.network.requestorIp, pid: process.pid,
      nodes: this.network.members(), forwards: this.network.activeForwards(),
    };
  }

  private accept(socket: Socket, events: NetworkEvents): void {
    if (this.closed) return void socket.destroy();
    this.connections.add(socket);
    const nodes: VpnNode[] = [];
    const forwards: Forward[] = [];
    // Requests are answered one after another, in the order they came.
    let queue = Promise.resolve();
    readLines(socket, (line) => {
      queue = queue.then(async () => {
        let request: ControlRequest;
        try {
          request = JSON.parse(line) as ControlRequest;
        } catch {
          socket.destroy();
          return;
        }
        const reply = await this.handle(request, nodes, forwards, events);
        if (socket.destroyed) {
          // Gone while its request was handled: what it was given goes back at once.
          await this.release(nodes, forwards, events);
          return;
        }
        writeMessage(socket, reply);
      });
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.connections.delete(socket);
      queue = queue.then(() => this.release(nodes, forwards, events));
    });
  }

  private async handle(request: ControlRequest, nodes: VpnNode[], forwards: Forward[], events: NetworkEvents): Promise<ControlReply> {
    const id = typeof request.id === 'number' ? request.id : 0;
    try {
      switch (request.op) {
        case 'describe':
          return { id, ok: true, network: this.describe() };
        case 'join': {
          const node = await this.network.addNode({
            ...(typeof request.ip === 'string' ? { ip: request.ip } : {}),
            ...(typeof request.name === 'string' ? { name: request.name } : {}),
          });
          nodes.push(node);
          events.joined?.({ ip: node.ip, ...(node.name !== undefined ? { name: node.name } : {}) });
          const { leave: _leave, ...joined } = node;
          return { id, ok: true, node: joined };
        }
        case 'forward': {
          const forward = await this.network.forward({
            ip: String(request.ip), port: Number(request.port),
            ...(request.hostPort !== undefined ? { hostPort: Number(request.hostPort) } : {}),
          });
          forwards.push(forward);
          events.forwarded?.(forward);
          return { id, ok: true, forward };
        }
        default:
          throw new GvmiTestError('usage', `the network does not know the request ${JSON.stringify((request as { op?: unknown }).op)}`);
      }
    } catch (error) {
      const e = error instanceof GvmiTestError ? error : new GvmiTestError('internal', error instanceof Error ? error.message : String(error));
      return { id, ok: false, error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } };
    }
  }

  private async release(nodes: VpnNode[], forwards: Forward[], events: NetworkEvents): Promise<void> {
    for (const forward of forwards.splice(0)) {
      await this.network.removeForward(forward.hostPort);
      events.unforwarded?.(forward);
    }
    for (const node of nodes.splice(0)) {
      node.leave();
      events.left?.({ ip: node.ip, ...(node.name !== undefined ? { name: node.name } : {}) });
    }
  }

  /** Stops serving: the socket is removed and every connection closed (the VMs keep running, without their VPN). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const socket of this.connections) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await unlink(this.socketPath).catch(() => {});
  }
}
