/**
 * A network served by another gvmi-test process (`gvmi-test network start --name NAME`), joined
 * from this one: `connectNetwork(NAME)` gives a JoinableNetwork that startVm takes as it takes a
 * VpnNetwork. Each node is one connection to the network's control socket, held while the VM
 * runs: closing it (leave) gives the address back and ends the forwards made through it. When the
 * network process ends, the VMs joined to it keep running, but nothing carries their VPN frames
 * any more: `onLost` says so.
 */
import { once } from 'node:events';
import { access, readdir } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { GvmiTestError } from '../errors.js';
import { errorFromReply, readLines, writeMessage, type ControlReply, type JoinedNode, type NetworkDescription } from './network-control-protocol.js';
import { networkSocketPath, networkSocketsDir, trustedNetworkSocketsDir } from './network-sockets-dir.js';
import type { Forward, JoinableNetwork, NodeOptions, VpnNode } from './vpn-network.js';

type Request = { op: 'describe' } | { op: 'join'; ip?: string; name?: string } | { op: 'forward'; ip: string; port: number; hostPort?: number };

/** One connection to the control socket: requests answered in order. */
class ControlConnection {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (reply: ControlReply) => void; reject: (error: Error) => void }>();
  private closing = false;
  /** Resolves when the connection is gone; `true` when this side closed it. */
  readonly ended: Promise<boolean>;

  private constructor(private readonly socket: Socket, private readonly networkName: string) {
    readLines(socket, (line) => {
      let reply: ControlReply;
      try {
        reply = JSON.parse(line) as ControlReply;
      } catch {
        socket.destroy();
        return;
      }
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      waiter?.resolve(reply);
    });
    socket.on('error', () => {});
    this.ended = once(socket, 'close').then(() => {
      for (const waiter of this.waiting.values()) waiter.reject(gone(this.networkName));
      this.waiting.clear();
      return this.closing;
    });
  }

  static async open(path: string, name: string): Promise<ControlConnection> {
    const socket = connect(path);
    try {
      await Promise.race([once(socket, 'connect'), once(socket, 'error').then(([error]) => { throw error; })]);
    } catch (error) {
      socket.destroy();
      throw notRunning(name, (error as NodeJS.ErrnoException).code);
    }
    return new ControlConnection(socket, name);
  }

  async request<T>(request: Request, field: string): Promise<T> {
    const id = this.nextId++;
    const reply = await new Promise<ControlReply>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      writeMessage(this.socket, { id, ...request });
    });
    if (!reply.ok) throw errorFromReply(reply.error, `the network ${this.networkName} refused ${request.op}`);
    return reply[field] as T;
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }
}

function notRunning(name: string, why?: string): GvmiTestError {
  return new GvmiTestError('network.not-found', `no network named ${name} is running${why && why !== 'ENOENT' ? ` (${why})` : ''}`, {
    hint: `start it in another terminal: gvmi-test network start --name ${name} --ip 192.168.7.0/24   (gvmi-test network list shows the running ones)`,
  });
}

function gone(name: string): GvmiTestError {
  return new GvmiTestError('network.gone', `the network ${name} has gone (its process ended)`, { hint: 'start it again: gvmi-test network start' });
}

export interface ConnectNetworkOptions {
  /**
   * Called when the network process goes away while a node of this process is joined: the VM
   * keeps running, but its VPN carries nothing any more.
   */
  onLost?: (node: { ip: string; name?: string }) => void;
}

export class RemoteNetwork implements JoinableNetwork {
  private readonly byIp = new Map<string, ControlConnection>();
  private readonly others = new Set<ControlConnection>();

  private constructor(private readonly path: string, readonly name: string, /** As the network described itself when connected. */ readonly description: NetworkDescription, private readonly options: ConnectNetworkOptions) {}

  /** The network named `name`, checked to be running (network.not-found otherwise). */
  static async connect(name: string, options: ConnectNetworkOptions = {}): Promise<RemoteNetwork> {
    const path = networkSocketPath(await trustedNetworkSocketsDir(), name);
    const connection = await ControlConnection.open(path, name);
    try {
      return new RemoteNetwork(path, name, await connection.request<NetworkDescription>({ op: 'describe' }, 'network'), options);
    } finally {
      connection.close();
    }
  }

  get ip(): string {
    return this.description.ip;
  }

  get requestorIp(): string {
    return this.description.requestorIp;
  }

  async addNode(options: NodeOptions = {}): Promise<VpnNode> {
    const connection = await ControlConnection.open(this.path, this.name);
    let node: JoinedNode;
    try {
      node = await connection.request<JoinedNode>({ op: 'join', ...options }, 'node');
    } catch (error) {
      connection.close();
      throw error;
    }
    this.byIp.set(node.ip, connection);
    const who = { ip: node.ip, ...(node.name !== undefined ? { name: node.name } : {}) };
    void connection.ended.then((closedHere) => {
      if (!closedHere) this.options.onLost?.(who);
    });
    return {
      ...node,
      leave: () => {
        this.byIp.delete(node.ip);
        connection.close();
      },
    };
  }

  /**
   * Forwards a host port to ip:port in the network. A forward to a node of this process goes
   * with that node (it ends when the VM leaves); any other lasts until close().
   */
  async forward(target: { ip: string; port: number; hostPort?: number }): Promise<Forward> {
    let connection = this.byIp.get(target.ip);
    if (!connection) {
      connection = await ControlConnection.open(this.path, this.name);
      this.others.add(connection);
    }
    return connection.request<Forward>({ op: 'forward', ...target }, 'forward');
  }

  /** What the network has now: its nodes and forwards. */
  async describe(): Promise<NetworkDescription> {
    const connection = await ControlConnection.open(this.path, this.name);
    try {
      return await connection.request<NetworkDescription>({ op: 'describe' }, 'network');
    } finally {
      connection.close();
    }
  }

  /** Resolves when the network process goes away (for a process that holds forwards only). */
  async lost(): Promise<void> {
    const watch = await ControlConnection.open(this.path, this.name);
    this.others.add(watch);
    await watch.ended;
  }

  /** Ends the forwards to other nodes (nodes leave with their VMs). */
  close(): void {
    for (const connection of this.others) connection.close();
    this.others.clear();
  }
}

export function connectNetwork(name: string, options: ConnectNetworkOptions = {}): Promise<RemoteNetwork> {
  return RemoteNetwork.connect(name, options);
}

/** Every network running now, each as it describes itself. */
export async function listNetworks(): Promise<NetworkDescription[]> {
  const dir = networkSocketsDir();
  if (!(await access(dir).then(() => true, () => false))) return [];
  const names = (await readdir(await trustedNetworkSocketsDir())).filter((f) => f.endsWith('.sock')).map((f) => f.slice(0, -'.sock'.length)).sort();
  const found: NetworkDescription[] = [];
  for (const name of names) {
    const network = await RemoteNetwork.connect(name).catch(() => undefined);
    // A socket left by a network process that died is not a network.
    if (network) found.push(network.description);
  }
  return found;
}
