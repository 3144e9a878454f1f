/**
 * `gvmi-test network start|list|forward`: a requestor network that lives in its own process, so
 * that VMs started from other terminals (`run|serve|shell|start-entrypoint --network NAME`) join
 * it, as the nodes of a golem-js app join its VPN. `start` runs in the foreground until Ctrl-C;
 * `forward` holds a host port forwarded into the network until Ctrl-C.
 */
import type { Command } from 'commander';
import { GvmiTestError } from '../../errors.js';
import { printable } from '../../terminal-safe.js';
import { writeLine, type CliIo } from '../io.js';
import { parsePositiveInt } from '../options.js';
import { divertSignals, TERMINATION_SIGNALS } from '../termination.js';

const DEFAULT_NAME = 'default';

/** Resolves on the first Ctrl-C, SIGTERM or SIGHUP (a second one ends the process at once). */
function untilSignalled(): { signalled: Promise<void>; restore: () => void } {
  let restore = (): void => {};
  const signalled = new Promise<void>((resolve) => {
    restore = divertSignals(TERMINATION_SIGNALS, () => {
      restore();
      resolve();
    });
  });
  return { signalled, restore };
}

/** `IP:PORT` */
function parseTarget(spec: string): { ip: string; port: number } {
  const at = spec.lastIndexOf(':');
  const port = at > 0 && /^[0-9]{1,5}$/.test(spec.slice(at + 1)) ? Number(spec.slice(at + 1)) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new GvmiTestError('usage', `${JSON.stringify(spec)} must look like IP:PORT`, { hint: 'gvmi-test network forward default 192.168.7.2:22' });
  return { ip: spec.slice(0, at), port };
}

export function registerNetwork(program: Command, io: CliIo): void {
  const network = program
    .command('network')
    .description('a requestor network (VPN) in its own process, that VMs started from other terminals join with --network NAME');
  const say = (line: string): void => writeLine(io.stderr, `gvmi-test: ${line}`);

  network
    .command('start')
    .description('start a network and serve it until Ctrl-C (VMs joined keep running, without their VPN, when it stops)')
    .option('--ip <CIDR>', 'the network as golem-js writes it; the requestor (and host forwards) is its first address, nodes the next ones', '192.168.0.0/24')
    .option('--name <NAME>', 'what --network NAME calls it', DEFAULT_NAME)
    .option('--json', 'print the network as one JSON line')
    .action(async (flags: { ip: string; name: string; json?: boolean }) => {
      const { checkNetworkName } = await import('../../network/network-sockets-dir.js');
      const name = checkNetworkName(flags.name);
      const { startNetwork } = await import('../../network/vpn-network.js');
      const { NetworkControlServer } = await import('../../network/network-control-server.js');
      const vpn = await startNetwork({ ip: flags.ip });
      const who = (n: { ip: string; name?: string }): string => (n.name !== undefined ? `${n.ip} (${printable(n.name)})` : n.ip);
      let control;
      try {
        control = await NetworkControlServer.start(vpn, name, {
          joined: (n) => say(`${who(n)} joined`),
          left: (n) => say(`${who(n)} left; its address is free again`),
          forwarded: (f) => say(`127.0.0.1:${f.hostPort} → ${f.ip}:${f.port}`),
          unforwarded: (f) => say(`127.0.0.1:${f.hostPort} → ${f.ip}:${f.port} ended`),
        });
      } catch (error) {
        await vpn.close();
        throw error;
      }
      const { signalled, restore } = untilSignalled();
      if (flags.json) {
        writeLine(io.stdout, JSON.stringify({ name, ip: vpn.ip, requestorIp: vpn.requestorIp, socket: control.socketPath, pid: process.pid }));
      } else {
        say(`network ${name}: ${vpn.ip}; the requestor (where host forwards come from) is ${vpn.requestorIp}, nodes take the next addresses`);
        say(`join it from other terminals: gvmi-test run --network ${name} [--hostname NAME] [--forward PORT] IMAGE -- COMMAND   (also serve, shell, start-entrypoint)`);
        say('Ctrl-C stops it (VMs joined keep running, without their VPN)');
      }
      try {
        await signalled;
      } finally {
        restore();
        await control.close();
        await vpn.close();
      }
      if (!flags.json) say(`network ${name} stopped`);
    });

  network
    .command('list')
    .description('the networks running now, their nodes and forwards')
    .option('--json', 'print them as one JSON array')
    .action(async (flags: { json?: boolean }) => {
      const { listNetworks } = await import('../../network/network-control-client.js');
      const networks = await listNetworks();
      if (flags.json) {
        writeLine(io.stdout, JSON.stringify(networks));
        return;
      }
      if (networks.length === 0) say('no network is running (gvmi-test network start)');
      for (const n of networks) {
        writeLine(io.stdout, `${n.name}\t${n.ip}\tpid ${n.pid}`);
        for (const node of n.nodes) writeLine(io.stdout, `  node ${node.ip}${node.name !== undefined ? ` ${printable(node.name)}` : ''}`);
        for (const f of n.forwards) writeLine(io.stdout, `  forward 127.0.0.1:${f.hostPort} → ${f.ip}:${f.port}`);
      }
    });

  network
    .command('forward')
    .description('forward a host port on 127.0.0.1 to IP:PORT in a network (any node), until Ctrl-C')
    .argument('<name>', 'the network (gvmi-test network start --name)')
    .argument('<ip:port>', 'the node\'s address in the network and the port')
    .option('--host-port <n>', 'the host port (default: a free one)')
    .option('--json', 'print the forward as one JSON line')
    .action(async (name: string, spec: string, flags: { hostPort?: string; json?: boolean }) => {
      const target = parseTarget(spec);
      const hostPort = flags.hostPort !== undefined ? parsePositiveInt(flags.hostPort, '--host-port') : undefined;
      const { connectNetwork } = await import('../../network/network-control-client.js');
      const remote = await connectNetwork(name);
      // A watch that fails to open means the network is gone too.
      const lost = remote.lost().catch(() => {});
      try {
        const forward = await remote.forward({ ...target, ...(hostPort !== undefined ? { hostPort } : {}) });
        const { signalled, restore } = untilSignalled();
        if (flags.json) writeLine(io.stdout, JSON.stringify({ network: name, ...forward }));
        else writeLine(io.stdout, `127.0.0.1:${forward.hostPort}`);
        say(`127.0.0.1:${forward.hostPort} → ${forward.ip}:${forward.port}; Ctrl-C ends the forward`);
        try {
          const ended = await Promise.race([signalled.then(() => 'signal' as const), lost.then(() => 'lost' as const)]);
          if (ended === 'lost') throw new GvmiTestError('network.gone', `the network ${name} has gone (its process ended): the forward ended with it`);
        } finally {
          restore();
        }
      } finally {
        remote.close();
      }
    });

  for (const command of network.commands) command.exitOverride();
}
