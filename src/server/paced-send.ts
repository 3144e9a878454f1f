/**
 * Sending a large file over a WebSocket without holding it in memory: ws.send() never blocks,
 * it queues, so a sender that reads chunk after chunk faster than the peer takes them ends up
 * with the whole file in the socket's queue. A chunk is awaited (its send callback fires once it
 * is handed to the kernel) whenever the queue is above a bound, so at most about that much is
 * held in this process.
 */
import type { WebSocket } from 'ws';

/** Bytes queued on a socket above which a sender of file contents waits. */
export const SEND_HIGH_WATER_BYTES = 4 * 1024 * 1024;

/** Sends one frame; waits for it to be written when the socket's queue is above the bound. */
export async function sendPaced(ws: WebSocket, text: string): Promise<void> {
  if (ws.readyState !== ws.OPEN) throw new Error('the connection closed during the transfer');
  const written = new Promise<void>((resolve, reject) => ws.send(text, (error) => (error ? reject(error) : resolve())));
  if (ws.bufferedAmount <= SEND_HIGH_WATER_BYTES) {
    written.catch(() => {}); // a later send (or the close handler) reports the broken connection
    return;
  }
  // a socket torn down under us must not leave the sender waiting for a callback forever
  await new Promise<void>((resolve, reject) => {
    const onClose = (): void => reject(new Error('the connection closed during the transfer'));
    ws.once('close', onClose);
    written.then(resolve, reject).finally(() => ws.off('close', onClose));
  });
}
