/**
 * A guest stream passed through with a label at the start of each line, so that the output of
 * several runs (`run --runtime-version all`) can be told apart however stdout and stderr are
 * captured. Bytes go out as they come (progress output stays live); only line starts are marked.
 */
const NEWLINE = 0x0a;

export class LinePrefixer {
  private atLineStart = true;
  private readonly label: Buffer;

  constructor(private readonly out: NodeJS.WritableStream, prefix: string) {
    this.label = Buffer.from(prefix);
  }

  /** Returns what `out.write` returned (false: wait for 'drain'). */
  write(data: Buffer): boolean {
    if (data.length === 0) return true;
    const parts: Buffer[] = [];
    let start = 0;
    while (start < data.length) {
      if (this.atLineStart) parts.push(this.label);
      const newline = data.indexOf(NEWLINE, start);
      const end = newline < 0 ? data.length : newline + 1;
      parts.push(data.subarray(start, end));
      this.atLineStart = newline >= 0;
      start = end;
    }
    return this.out.write(Buffer.concat(parts));
  }

  /** Ends a last line that had no newline, so that what follows starts on a line of its own. */
  finish(): void {
    if (!this.atLineStart) this.out.write('\n');
    this.atLineStart = true;
  }
}
