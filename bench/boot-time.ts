/**
 * Time from QEMU start to the guest agent's first answer, and to the first command's result,
 * for the tiny busybox image. Prints one line per run and the medians.
 * Usage: npx tsx bench/boot-time.ts [runs=5]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../src/image/build-image.js';
import { startVm } from '../src/vm/start-vm.js';
import { makeBusyboxRootfs, TINY_IMAGE_SETTINGS } from '../test/helpers/busybox-rootfs.js';

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const runs = Number(process.argv[2] ?? 5);
const dir = await mkdtemp(join(tmpdir(), 'gvmi-bench-'));
try {
  await makeBusyboxRootfs(join(dir, 'rootfs'));
  const image = join(dir, 'tiny.gvmi');
  await buildImage({ source: join(dir, 'rootfs'), output: image, ...TINY_IMAGE_SETTINGS });
  const agent: number[] = [];
  const firstCommand: number[] = [];
  let accel = '';
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const vm = await startVm({ image });
    const ready = performance.now() - t0;
    await vm.exec(['/bin/true']);
    const first = performance.now() - t0;
    await vm.stop();
    accel = vm.info.accelerator.reason;
    agent.push(ready);
    firstCommand.push(first);
    console.log(`run ${i + 1}: agent answered (volumes mounted) ${ready.toFixed(0)} ms, first command done ${first.toFixed(0)} ms`);
  }
  console.log(`accelerator: ${accel}`);
  console.log(`median over ${runs}: QEMU start -> agent ready ${median(agent).toFixed(0)} ms; -> first command ${median(firstCommand).toFixed(0)} ms`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
