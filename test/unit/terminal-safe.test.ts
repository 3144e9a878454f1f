import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { printable, printableBlock } from '../../src/terminal-safe.js';
import { writeLine } from '../../src/cli/io.js';
import { formatFinding } from '../../src/diagnostics/finding.js';

/** Every character a terminal may act on: C0, DEL, C1, bidi embeddings/overrides/isolates. */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_EXCEPT_LAYOUT = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

const everyCodeUnit = (from: number, to: number): string => String.fromCharCode(...Array.from({ length: to - from + 1 }, (_, i) => from + i));
const ALL_CONTROLS = everyCodeUnit(0x00, 0x1f) + everyCodeUnit(0x7f, 0x9f) + everyCodeUnit(0x202a, 0x202e) + everyCodeUnit(0x2066, 0x2069);

describe('terminal-safe text', () => {
  it('shows ESC sequences, C1 controls and bidi overrides as visible escapes', () => {
    expect(printable('\x1b]0;owned\x07\x1b[2J')).toBe('\\x1b]0;owned\\x07\\x1b[2J');
    expect(printable('a\u009b31mb')).toBe('a\\u009b31mb');
    expect(printable('txt.\u202egpj.exe')).toBe('txt.\\u202egpj.exe');
    expect(printable('\u2066x\u2069\x7f')).toBe('\\u2066x\\u2069\\u007f');
    expect(printable('one\ntwo\rthree\tfour\0')).toBe('one\\ntwo\\rthree\\tfour\\x00');
  });

  it('leaves every control out, and everything else alone', () => {
    expect(printable(ALL_CONTROLS)).not.toMatch(UNSAFE);
    expect(printableBlock(ALL_CONTROLS)).not.toMatch(UNSAFE_EXCEPT_LAYOUT);
    const ordinary = 'plain ASCII, é ü ß, 日本語, emoji 🚀, backslash \\ and \u00a0 nbsp, \u200f mark';
    expect(printable(ordinary)).toBe(ordinary);
    expect(printableBlock(ordinary)).toBe(ordinary);
  });

  it('is idempotent, so escaping a field and then the whole line is harmless', () => {
    const once = printable(ALL_CONTROLS);
    expect(printable(once)).toBe(once);
    expect(printableBlock(once)).toBe(once);
  });

  it('keeps line breaks and tabs in a block, nothing else', () => {
    expect(printableBlock('line 1\n\tline 2\r\x1b[1A')).toBe('line 1\n\tline 2\\r\\x1b[1A');
  });

  it('keeps JSON valid and its values exact (JSON.stringify leaves DEL, C1 and bidi raw)', () => {
    const value = { label: 'a\u009b2Jb\u202e\x7f\x1b', list: ['\u0085', '\u2069'] };
    const json = JSON.stringify(value, null, 2);
    expect(json).toMatch(UNSAFE_EXCEPT_LAYOUT); // the reason for this test
    const safe = printableBlock(json);
    expect(safe).not.toMatch(UNSAFE_EXCEPT_LAYOUT);
    expect(JSON.parse(safe)).toEqual(value);
  });

  it('writeLine never lets a control character through, whatever its caller passed', () => {
    const stream = new PassThrough();
    writeLine(stream, `label=\x1b[2J\u009b1A\nsecond line\u202e`);
    const written = String(stream.read());
    expect(written).toBe('label=\\x1b[2J\\u009b1A\nsecond line\\u202e\n');
  });

  it('a finding keeps its shape whatever its paths contain', () => {
    const text = formatFinding({
      code: 'shadowed-files',
      severity: 'warning',
      message: 'hidden \x1b[8m',
      fix: 'move them\x1b[2K',
      paths: ['/vol/x\n  fix: nothing to do', '/vol/\x1b[1A\x1b[2Kno provider traps found'],
    });
    expect(text.split('\n')).toEqual([
      'warning [shadowed-files] hidden \\x1b[8m',
      '    /vol/x\\n  fix: nothing to do',
      '    /vol/\\x1b[1A\\x1b[2Kno provider traps found',
      '  fix: move them\\x1b[2K',
    ]);
  });
});
