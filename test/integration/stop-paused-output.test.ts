/**
 * Stopping a VM whose output a consumer paused and never resumed (a closed stdout never drains:
 * `gvmi-test run … | head -2`). The guest's answer to QUIT sits behind the unread output, so the
 * stop must read the channel again, or it waits out QUIT's timeout and kills QEMU.
 */
import { pino } from 'pino';
import { describe, expect, inject, it } from 'vitest';
import { startVm } from '../../src/index.js';

describe('stopping a VM with its output paused', () => {
  it('QUIT is answered and the guest powers off by itself: nothing waits out a timeout, QEMU is not killed', async () => {
    const records: { msg?: string }[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => { records.push(JSON.parse(line) as { msg?: string }); } });
    const vm = await startVm({ image: inject('tinyImage'), logger });
    const flood = await vm.spawn('while :; do echo line; done');
    let seen = 0;
    flood.on('stdout', (data: Buffer) => { seen += data.length; });
    // Wait until output flows, then stop reading it, as the CLI does when its stdout will not drain.
    while (seen === 0) await new Promise((r) => setTimeout(r, 20));
    vm.pauseOutput();
    await vm.stop();
    const messages = records.map((r) => r.msg);
    expect(messages).not.toContain('quit not acknowledged');
    expect(messages).not.toContain('guest did not power off in time; killing QEMU');
    expect(vm.stopped).toBe(true);
  });
});
