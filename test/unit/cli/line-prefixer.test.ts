import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LinePrefixer } from '../../../src/cli/line-prefixer.js';

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

describe('LinePrefixer', () => {
  it('marks every line start, whatever the chunking', () => {
    const out = sink();
    const p = new LinePrefixer(out.stream, '[0.5] ');
    for (const chunk of ['a', 'b\nc', '\n', '\n\nd', 'e\n']) p.write(Buffer.from(chunk));
    p.finish();
    expect(out.text()).toBe('[0.5] ab\n[0.5] c\n[0.5] \n[0.5] \n[0.5] de\n');
  });

  it('finish ends a line left open, and adds nothing after a newline', () => {
    const out = sink();
    const p = new LinePrefixer(out.stream, '> ');
    p.write(Buffer.from('no newline'));
    p.finish();
    p.finish();
    p.write(Buffer.from('next\n'));
    p.finish();
    expect(out.text()).toBe('> no newline\n> next\n');
  });

  it('passes bytes through untouched (not UTF-8 decoded) and an empty chunk writes nothing', () => {
    const out = sink();
    const p = new LinePrefixer(out.stream, '> ');
    p.write(Buffer.from([0xe2, 0x82]));
    p.write(Buffer.alloc(0));
    p.write(Buffer.from([0xac, 0x0a]));
    expect(out.text()).toBe('> €\n');
  });

  it("returns the stream's back-pressure answer", () => {
    const slow = new Writable({ highWaterMark: 4, write: (_c, _e, cb) => setTimeout(cb, 10) });
    const p = new LinePrefixer(slow, '> ');
    expect(p.write(Buffer.from('0123456789\n'))).toBe(false);
  });
});
