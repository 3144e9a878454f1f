import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeTrailer, readGvmi } from '../../../src/image/gvmi-file.js';
import { isGvmiTestError } from '../../../src/errors.js';
import { smallSquashfs } from '../../helpers/small-squashfs.js';

const hasPython = (() => {
  try {
    execFileSync('python3', ['-c', 'import zlib']);
    return true;
  } catch {
    return false;
  }
})();

let dir: string;
let squashfs: Buffer;

beforeAll(async () => {
  ({ dir, bytes: squashfs } = await smallSquashfs());
});

const config = { Env: ['A=1'], Volumes: { '/golem/output': {} }, WorkingDir: '/w', Image: 'abc' };

async function writeImage(name: string, bytes: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

async function expectCode(path: string, code: string): Promise<void> {
  const error = await readGvmi(path).then(() => undefined, (e: unknown) => e);
  expect(isGvmiTestError(error), String(error)).toBe(true);
  expect((error as { code: string }).code).toBe(code);
}

describe('.gvmi layout', () => {
  it('writes squashfs + CRC-32 LE + compact JSON + 8-digit length, and reads it back', async () => {
    const trailer = encodeTrailer(config);
    const json = Buffer.from(JSON.stringify(config));
    expect(trailer.readUInt32LE(0)).toBe(crc32(json) >>> 0);
    expect(trailer.subarray(4, 4 + json.length).equals(json)).toBe(true);
    expect(trailer.subarray(-8).toString()).toBe(String(json.length).padStart(8, '0'));

    const path = await writeImage('ok.gvmi', Buffer.concat([squashfs, trailer]));
    const image = await readGvmi(path);
    expect(image.squashfsSize).toBe(squashfs.length);
    expect(image.config).toEqual(config);
    expect(image.metadata.volumes).toEqual(['/golem/output']);
    expect(image.metadata.workingDir).toBe('/w');
    expect(image.squashfs.compression).toBe('lzo');
    expect(image.squashfs.blockSize).toBe(131072);
  });

  it.runIf(hasPython)('is readable by the reference reader logic (independent CRC in Python)', async () => {
    const path = await writeImage('ref.gvmi', Buffer.concat([squashfs, encodeTrailer(config)]));
    // ya-runtime-vm deploy.rs logic: last 8 bytes = N, then crc u32 LE, then JSON; verify crc32.
    const script = `
import sys, zlib, struct, json
d = open(sys.argv[1], 'rb').read()
n = int(d[-8:].decode('ascii'))
crc = struct.unpack('<I', d[-8-n-4:-8-n])[0]
js = d[-8-n:-8]
assert crc == zlib.crc32(js), 'crc'
print(json.dumps(json.loads(js)))`;
    const out = execFileSync('python3', ['-c', script, path], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(config);
  });

  it.runIf(hasPython)('reads a file written by the reference writer logic (Python)', async () => {
    const sqfs = join(dir, 'fs.sqfs');
    const out = join(dir, 'from-python.gvmi');
    const script = `
import sys, zlib, struct, json
js = json.dumps({"Env": ["X=y"], "Volumes": {"/in": {}}}, separators=(',', ':')).encode()
with open(sys.argv[2], 'wb') as f:
    f.write(open(sys.argv[1], 'rb').read())
    f.write(struct.pack('<I', zlib.crc32(js)))
    f.write(js)
    f.write(b'%08d' % len(js))`;
    execFileSync('python3', ['-c', script, sqfs, out]);
    const image = await readGvmi(out);
    expect(image.metadata.env).toEqual(['X=y']);
    expect(image.metadata.volumes).toEqual(['/in']);
  });
});

describe('.gvmi bad input gets a typed error', () => {
  it('unreadable: missing file, or a directory', async () => {
    await expectCode(join(dir, 'nope.gvmi'), 'image.unreadable');
    await expectCode(dir, 'image.unreadable');
  });

  it('truncated: too short to hold squashfs + trailer', async () => {
    await expectCode(await writeImage('short.gvmi', Buffer.from('00000002{}')), 'image.truncated');
  });

  it('bad length: last 8 bytes are not digits', async () => {
    const bytes = Buffer.concat([squashfs, encodeTrailer(config)]);
    bytes.write('0000x012', bytes.length - 8, 'latin1');
    await expectCode(await writeImage('nodigits.gvmi', bytes), 'image.bad-length');
  });

  it('bad length: length reaches past the start of the file', async () => {
    const bytes = Buffer.concat([squashfs, encodeTrailer(config)]);
    bytes.write('99999999', bytes.length - 8, 'latin1');
    await expectCode(await writeImage('toolong.gvmi', bytes), 'image.bad-length');
  });

  it('crc mismatch: one flipped byte of JSON', async () => {
    const bytes = Buffer.concat([squashfs, encodeTrailer(config)]);
    const jsonStart = squashfs.length + 4;
    bytes[jsonStart + 2] = bytes[jsonStart + 2]! ^ 0x20;
    await expectCode(await writeImage('crc.gvmi', bytes), 'image.crc-mismatch');
  });

  it('JSON that is not an object, and JSON that does not parse', async () => {
    const raw = (json: string): Buffer => {
      const j = Buffer.from(json);
      const crc = Buffer.alloc(4);
      crc.writeUInt32LE(crc32(j) >>> 0);
      return Buffer.concat([squashfs, crc, j, Buffer.from(String(j.length).padStart(8, '0'))]);
    };
    await expectCode(await writeImage('array.gvmi', raw('[1,2]')), 'image.bad-json');
    await expectCode(await writeImage('null.gvmi', raw('null')), 'image.bad-json');
    await expectCode(await writeImage('garbage.gvmi', raw('{"a":')), 'image.bad-json');
  });

  it('no squashfs magic at offset 0', async () => {
    const fake = Buffer.alloc(4096, 7);
    await expectCode(await writeImage('nomagic.gvmi', Buffer.concat([fake, encodeTrailer(config)])), 'image.no-squashfs');
  });
});
