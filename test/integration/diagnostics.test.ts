/**
 * Run-time findings triggered in a real VM: each names its code and its fix.
 */
import { resolve } from 'node:path';
import { execa } from 'execa';
import { describe, expect, inject, it } from 'vitest';
import { describeWithVm } from '../../src/vitest/index.js';

describeWithVm('run-time findings', { image: inject('tinyImage'), testTimeoutMs: 12_000 }, (vm) => {
  it('overlay-full: names the overlay, the MB written, the largest files and the fix', async () => {
    const r = await vm().exec('mkdir -p /data && dd if=/dev/zero of=/data/huge.bin bs=1M count=150');
    const findings = await vm().diagnose(r);
    const f = findings.find((x) => x.code === 'overlay-full');
    expect(f, JSON.stringify(findings)).toBeDefined();
    expect(f!.message).toMatch(/\/ is a 128 MiB RAM overlay on a provider; \d+\.\d MiB were written outside volumes/);
    expect(f!.paths?.[0]).toMatch(/^\/data\/huge\.bin \(\d+(\.\d)? MiB\)$/);
    expect(f!.fix).toContain('/golem/output');
    await vm().exec('rm -rf /data');
  });

  it('a failing command with room to spare is not blamed on the overlay', async () => {
    const findings = await vm().diagnose(await vm().exec('exit 1'));
    expect(findings.map((f) => f.code)).toEqual([]);
  });

  it('output-truncated-on-provider: 64 KiB of stdout', async () => {
    const r = await vm().exec('head -c 65536 /dev/zero | tr "\\0" a');
    const f = (await vm().diagnose(r)).find((x) => x.code === 'output-truncated-on-provider');
    expect(f).toBeDefined();
    expect(f!.message).toContain('stdout 65536 bytes');
    expect(f!.fix).toMatch(/write results to a file in a volume/);
  });

  it('shadowed-files: the baked file hidden by the volume is named at start', () => {
    const f = vm().shadowingFinding();
    expect(f?.code).toBe('shadowed-files');
    expect(f?.paths).toEqual(['/golem/input/baked.txt']);
    expect(f?.fix).toMatch(/move them out of the volume paths/);
  });
});

describe('the CLI prints findings', () => {
  const cli = resolve('dist/cli/main.js');

  it('run: shadowing at start, overlay-full after a failing write, with fixes', async () => {
    const r = await execa('node', [cli, 'run', inject('tinyImage'), '--', '/bin/sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=200'], { reject: false });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('warning [shadowed-files]');
    expect(r.stderr).toContain('/golem/input/baked.txt');
    expect(r.stderr).toContain('error [overlay-full]');
    expect(r.stderr).toContain('/big (');
    expect(r.stderr).toMatch(/fix: write large files to a VOLUME such as \/golem\/output/);
  });

  it('run --json carries the findings; --report adds usage', async () => {
    const r = await execa('node', [cli, 'run', inject('tinyImage'), '--json', '--report', '--', '/bin/sh', '-c', 'head -c 10000 /dev/zero > /golem/output/f; head -c 5000 /dev/zero'], { reject: false });
    const result = JSON.parse(r.stdout) as { findings: { code: string }[]; report: { overlay: { totalBytes: number }; volumes: { guestPath: string; bytes: number }[] } };
    expect(result.findings.map((f) => f.code)).toEqual(['shadowed-files', 'output-truncated-on-provider']);
    expect(result.report.overlay.totalBytes).toBe(128 * 1024 * 1024);
    expect(result.report.volumes.find((v) => v.guestPath === '/golem/output')!.bytes).toBeGreaterThanOrEqual(10000);
  });
});
