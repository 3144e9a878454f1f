/**
 * The seed scenario: FROM debian, VOLUME /golem/input /golem/output, WORKDIR /golem/work.
 * A script reads /golem/input and writes /golem/output, as a requestor's task would.
 */
import { join } from 'node:path';
import { expect, inject, it } from 'vitest';
import { describeWithVm } from 'gvmi-test/vitest';

const here = import.meta.dirname;

describeWithVm('seed-debian under provider conditions', { image: inject('seedImage'), reset: 'reboot', testTimeoutMs: 15_000 }, (vm) => {
  it('the script reads /golem/input and writes /golem/output', async () => {
    await vm().upload(join(here, 'process.sh'), '/golem/input/process.sh');
    await vm().upload(join(here, 'data.csv'), '/golem/input/data.csv');
    const result = await vm().exec(['/bin/bash', '/golem/input/process.sh']);
    expect(result).toSucceed();
    expect(result).toHaveStdout(/^processed 1 file\(s\) on 12\.\d+\n$/);
    await expect(vm()).toHaveFile('/golem/output/data.sum', '6');
  });

  it('the file baked under /golem/input is shadowed by the volume', async () => {
    await expect(vm()).toShadow('/golem/input/baked.txt');
    expect(await vm().exec('cat /golem/input/baked.txt')).toExitWith(1);
  });

  it('scratch data outside volumes hits the 128 MB overlay...', async () => {
    const result = await vm().exec('mkdir -p /golem/work/scratch && head -c 150M /dev/urandom > /golem/work/scratch/intermediate.bin');
    await expect(result).toFailWithENOSPC();
  });

  it('...and the fix, writing it to a volume, works', async () => {
    const result = await vm().exec('head -c 150M /dev/urandom > /golem/output/intermediate.bin && ls -s --block-size=M /golem/output/intermediate.bin');
    expect(result).toSucceed();
    expect(result).toHaveStdout(/^150M /);
  });
});
