/**
 * Text from an image or a guest, made safe to print on a terminal. A hostile image chooses its
 * labels, Env, VOLUME and WORKDIR paths and file names, and a guest writes its console: printed
 * raw, an ESC sequence in any of them retitles the window, clears the screen or moves the cursor
 * up to overwrite what gvmi-test said (a fake "no provider traps found"); a C1 CSI (U+009B) does
 * the same on terminals that honour C1; a bidi override (U+202E …) reorders what follows it.
 * Every such character is shown as a visible escape instead.
 *
 * C0 controls become \n \r \t or \xHH; DEL, C1 and the bidi controls become \uHHHH. The \u form is
 * also a JSON escape: JSON.stringify never leaves a C0 control raw but does leave DEL, C1 and the
 * bidi controls raw, so `--json` output passed through here stays valid JSON with the same values.
 * Backslashes are left as they are: the aim is that nothing reaches the terminal raw, not a
 * reversible encoding (`--json` gives the exact values).
 */

/** Every character a terminal may act on instead of showing. */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
/** The same, but a line break and a tab are layout in a block of lines, not an attack. */
const UNSAFE_IN_BLOCK = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED[c] ?? (code < 0x20 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
}

/** One field on one line: every control character escaped, line breaks and tabs included. */
export function printable(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/** A block of lines: like `printable`, but \n and \t are kept. */
export function printableBlock(text: string): string {
  return text.replace(UNSAFE_IN_BLOCK, escapeChar);
}
