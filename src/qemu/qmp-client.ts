/**
 * A minimal QMP (QEMU Machine Protocol) client: one JSON object per line each way. Commands are
 * answered in order, so a FIFO of pending calls is enough; asynchronous events go to listeners.
 * Used only where the agent channel cannot help: saving the VM's state (migration.ts).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { GvmiTestError } from '../errors.js';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
}

interface PendingCall {
  command: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export class QmpClient extends EventEmitter<{ event: [QmpEvent] }> {
  private buffered = '';
  private readonly calls: PendingCall[] = [];
  private readonly greeted: Promise<void>;
  private failGreeting: (error: Error) => void = () => {};
  private closedError: GvmiTestError | undefined;

  constructor(private readonly socket: Socket) {
    super();
    let greet!: () => void;
    this.greeted = new Promise((resolve, reject) => {
      greet = resolve;
      this.failGreeting = reject;
    });
    this.greeted.catch(() => {}); // reported through negotiate()
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
        const line = this.buffered.slice(0, nl).trim();
        this.buffered = this.buffered.slice(nl + 1);
        if (line) this.onMessage(line, greet);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.fail(new GvmiTestError('snapshot.failed', 'the QEMU monitor closed')));
  }

  private onMessage(line: string, greet: () => void): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.fail(new GvmiTestError('snapshot.failed', `the QEMU monitor sent a line that is not JSON: ${line.slice(0, 200)}`));
      return;
    }
    if ('QMP' in message) { greet(); return; }
    if (typeof message['event'] === 'string') {
      this.emit('event', message as unknown as QmpEvent);
      return;
    }
    const call = this.calls.shift();
    if (!call) return;
    const error = message['error'] as { class?: string; desc?: string } | undefined;
    if (error) call.reject(new GvmiTestError('snapshot.failed', `QEMU refused ${call.command}: ${error.desc ?? error.class ?? 'unknown error'}`));
    else call.resolve(message['return']);
  }

  private fail(error: GvmiTestError): void {
    if (this.closedError) return;
    this.closedError = error;
    this.failGreeting(error);
    for (const call of this.calls.splice(0)) call.reject(error);
  }

  /** Waits for the greeting and leaves capability-negotiation mode. */
  async negotiate(): Promise<void> {
    await this.greeted;
    await this.execute('qmp_capabilities');
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.calls.push({ command, resolve, reject });
      this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
