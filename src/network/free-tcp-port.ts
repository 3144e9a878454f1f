/**
 * A TCP port on 127.0.0.1 that was free a moment ago, for a host forward whose port the caller
 * left open (libslirp binds a fixed port).
 */
import { once } from 'node:events';
import { createServer } from 'node:net';

export async function freeTcpPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP port from the kernel');
  return address.port;
}
