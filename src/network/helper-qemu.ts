/**
 * A QEMU with no machine (`-M none`): no guest, only netdevs. It hosts libslirp, QEMU's
 * userspace TCP/IP stack, joined through a hub to a socket netdev that speaks the provider's
 * framing (one Ethernet frame per UDP datagram on 127.0.0.1). Controlled over QMP, whose
 * human-monitor-command adds host forwards while it runs. Dies with this process (orphan reaper).
 */
import { once } from 'node:events';
import { chmod } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { dir as tempDir } from 'tmp-promise';
import { GvmiTestError } from '../errors.js';
import { monitorArgs } from '../qemu/migration.js';
import { QmpClient } from '../qemu/qmp-client.js';
import { spawnQemu, type QemuProcess } from '../qemu/qemu-process.js';
import { resolveQemuUser } from '../qemu/qemu-user.js';
import { findQemu } from '../qemu/runtime-files.js';

export interface SlirpOptions {
  /** libslirp's own net: `net=`, `host=` (its address, which stands for this host's 127.0.0.1), `dns=`. */
  net: string;
  host: string;
  dns: string;
  /** No connections out of the slirp net (host forwards still work): the VPN's requestor place. */
  restrict: boolean;
  /** The UDP port of the other end of the frames, and this QEMU's own. */
  remotePort: number;
  localPort: number;
  /** What the helper is, for error messages. */
  role: string;
}

export class HelperQemu {
  private constructor(private readonly proc: QemuProcess, private readonly qmp: QmpClient, private readonly cleanup: () => Promise<void>, readonly role: string) {}

  static async start(options: SlirpOptions): Promise<HelperQemu> {
    const [qemuPath, qemuUser] = await Promise.all([findQemu(), resolveQemuUser()]);
    const dir = await tempDir({ prefix: 'gvmi-net-', unsafeCleanup: true, mode: 0o700 });
    const monitorPath = join(dir.path, 'qmp.sock');
    const server = createServer();
    server.listen(monitorPath);
    await once(server, 'listening');
    await chmod(monitorPath, 0o600);
    const connection = once(server, 'connection') as Promise<[Socket]>;
    const args = [
      '-M', 'none', '-nodefaults', '-no-user-config', '-nographic',
      ...(qemuUser ? ['-runas', qemuUser.name] : []),
      ...monitorArgs(monitorPath),
      '-netdev', `user,id=slirp,net=${options.net},host=${options.host},dns=${options.dns},ipv6=off,restrict=${options.restrict ? 'on' : 'off'}`,
      '-netdev', `socket,id=frames,udp=127.0.0.1:${options.remotePort},localaddr=127.0.0.1:${options.localPort}`,
      '-netdev', 'hubport,id=to-slirp,hubid=0,netdev=slirp',
      '-netdev', 'hubport,id=to-frames,hubid=0,netdev=frames',
    ];
    const proc = spawnQemu(qemuPath, args, undefined, [], [dir.path]);
    const exited = proc.exited.then(() => undefined);
    try {
      const first = await Promise.race([connection, exited]);
      if (!first) throw new GvmiTestError('vm.boot-failed', `the ${options.role} (QEMU with libslirp) did not start: ${proc.stderr().trim() || 'no message'}`);
      const qmp = new QmpClient(first[0]);
      await qmp.negotiate();
      server.close();
      return new HelperQemu(proc, qmp, async () => {
        qmp.close();
        proc.kill('SIGKILL');
        await proc.exited;
        await dir.cleanup();
      }, options.role);
    } catch (error) {
      server.close();
      proc.kill('SIGKILL');
      await proc.exited;
      await dir.cleanup();
      throw error;
    }
  }

  /** Forwards 127.0.0.1:hostPort (TCP) to guestIp:guestPort inside the slirp net. */
  async addForward(hostPort: number, guestIp: string, guestPort: number): Promise<void> {
    const rule = `tcp:127.0.0.1:${hostPort}-${guestIp}:${guestPort}`;
    const said = await this.qmp.execute('human-monitor-command', { 'command-line': `hostfwd_add slirp ${rule}` })
      .catch((error: unknown) => { throw new GvmiTestError('deploy.bad-network', `the ${this.role} could not forward ${rule}: ${(error as Error).message}`); });
    // HMP answers an empty string on success, its complaint otherwise.
    if (typeof said === 'string' && said.trim()) {
      throw new GvmiTestError('deploy.bad-network', `127.0.0.1:${hostPort} cannot be forwarded: ${said.trim()}`, { hint: 'is the port in use? leave it out to take a free one' });
    }
  }

  /** Ends the forward of 127.0.0.1:hostPort (its open connections stay until they close). */
  async removeForward(hostPort: number): Promise<void> {
    await this.qmp.execute('human-monitor-command', { 'command-line': `hostfwd_remove slirp tcp:127.0.0.1:${hostPort}` }).catch(() => {});
  }

  get running(): boolean {
    return this.proc.running;
  }

  async close(): Promise<void> {
    await this.cleanup();
  }
}
