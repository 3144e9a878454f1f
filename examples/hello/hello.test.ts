/**
 * Asserting the hello image's behaviour under provider conditions. One VM for the file; the
 * volumes are emptied between tests.
 */
import { join } from 'node:path';
import { expect, inject } from 'vitest';
import { vmTest, vmTimeout } from 'gvmi-test/vitest';

const it = vmTest({ image: inject('helloImage'), scope: 'file', reset: 'volumes' });
const here = import.meta.dirname;

it('runs hello.sh as a requestor would', { timeout: vmTimeout(10_000) }, async ({ vm }) => {
  await vm.upload(join(here, 'hello.sh'), '/golem/input/hello.sh');
  await vm.upload(join(here, 'words.txt'), '/golem/input/words.txt');
  const result = await vm.exec(['/bin/sh', '/golem/input/hello.sh']);
  expect(result).toSucceed();
  expect(result).toHaveStdout(/^hello from the provider side, running as 0 in \/golem\/work\nresults: words.count\n$/);
});

it('writes its results to the output volume', { timeout: vmTimeout(10_000) }, async ({ vm }) => {
  await vm.upload(join(here, 'hello.sh'), '/golem/input/hello.sh');
  await vm.upload(join(here, 'words.txt'), '/golem/input/words.txt');
  await vm.exec(['/bin/sh', '/golem/input/hello.sh']);
  await expect(vm).toHaveFile('/golem/output/words.count', '9');
});

it('the README baked under /golem/input is hidden by the volume', { timeout: vmTimeout(10_000) }, async ({ vm }) => {
  await expect(vm).toShadow('/golem/input/README.txt');
});

it('runs in WORKDIR with the image ENV, and ENTRYPOINT/CMD never ran', { timeout: vmTimeout(10_000) }, async ({ vm }) => {
  expect(await vm.exec('pwd; echo $GREETING')).toHaveStdout('/golem/work\nhello');
  expect(await vm.exec('ls -A /golem/output')).toHaveStdout('');
});

it('writing 200 MB outside the volumes fails: / is a 128 MB RAM overlay', { timeout: vmTimeout(20_000) }, async ({ vm }) => {
  const result = await vm.exec('dd if=/dev/zero of=/tmp-big bs=1M count=200');
  await expect(result).toFailWithENOSPC();
  await vm.exec('rm -f /tmp-big');
  // the fix: write large files to a volume, which is a host directory
  expect(await vm.exec('dd if=/dev/zero of=/golem/output/big bs=1M count=200')).toSucceed();
});
