/**
 * Writes src/agent/protocol.ts from runtime/include/proto.h, so that the host's numbers are the
 * guest's by construction: `npm run generate:protocol` after changing proto.h.
 * test/unit/agent/protocol-mirror.test.ts fails while the committed file differs from what this
 * produces.
 *
 * The parser knows only what proto.h is made of (enums of `NAME = number`, `#define NAME number`,
 * one struct of u64 fields, comments) and refuses anything else, so that a new kind of constant
 * cannot be skipped quietly: it has to be taught here first.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Each C enum's TypeScript name and the prefix its members lose there (MSG_QUIT -> MsgType.QUIT). */
const ENUMS: Readonly<Record<string, { ts: string; prefix: string }>> = {
  msg_type: { ts: 'MsgType', prefix: 'MSG_' },
  sub_hello: { ts: 'SubHello', prefix: 'SUB_HELLO_' },
  sub_net_ctl: { ts: 'SubNetCtl', prefix: 'SUB_NET_CTL_' },
  sub_net_host: { ts: 'SubNetHost', prefix: 'SUB_NET_HOST_' },
  sub_run_process: { ts: 'SubRun', prefix: 'SUB_RUN_' },
  redirect_kind: { ts: 'RedirectKind', prefix: 'REDIRECT_' },
  sub_kill_process: { ts: 'SubKill', prefix: 'SUB_KILL_' },
  sub_mount_volume: { ts: 'SubMount', prefix: 'SUB_MOUNT_' },
  sub_query_output: { ts: 'SubQuery', prefix: 'SUB_QUERY_' },
  sub_put_input: { ts: 'SubInput', prefix: 'SUB_INPUT_' },
  sub_signal: { ts: 'SubSignal', prefix: 'SUB_SIGNAL_' },
  sub_usage: { ts: 'SubUsage', prefix: 'SUB_USAGE_' },
  sub_resumed: { ts: 'SubResumed', prefix: 'SUB_RESUMED_' },
  sub_clock: { ts: 'SubClock', prefix: 'SUB_CLOCK_' },
  sub_resize: { ts: 'SubResize', prefix: 'SUB_RESIZE_' },
  // RESP_OK -> RespType.OK; the NOTIFY_ members keep their names.
  resp_type: { ts: 'RespType', prefix: 'RESP_' },
  exec_step: { ts: 'ExecStep', prefix: 'EXEC_STEP_' },
  exit_kind: { ts: 'ExitKind', prefix: 'EXIT_' },
};

/** The struct whose u64 fields are a reply body, and the TypeScript list of their names. */
const STRUCTS: Readonly<Record<string, { ts: string; countDefine: string }>> = {
  proto_stats: { ts: 'STATS_FIELDS', countDefine: 'PROTO_STATS_FIELDS' },
};

/** Lines of a C comment without its markers and the leading `*` of continuation lines. */
function commentLines(comment: string): string[] {
  const inner = comment.replace(/^\/\*+/, '').replace(/\*+\/$/, '');
  const lines = inner.split('\n').map((line) => line.replace(/^\s*\*(?!\/)\s?/, '').trimEnd());
  while (lines.length > 0 && lines[0]!.trim() === '') lines.shift();
  while (lines.length > 0 && lines.at(-1)!.trim() === '') lines.pop();
  // The first line follows `/*` on its line; the others are aligned among themselves.
  const [first = '', ...rest] = lines;
  const indent = Math.min(...rest.filter((l) => l.trim() !== '').map((l) => /^\s*/.exec(l)![0].length));
  return [first.trimStart(), ...rest.map((l) => l.slice(indent))];
}

function jsdoc(lines: readonly string[], indent: string): string {
  // A `*/` inside C text would end the JSDoc early.
  const safe = lines.map((l) => l.replaceAll('*/', '*\\/'));
  if (safe.length === 1) return `${indent}/** ${safe[0]} */\n`;
  return `${indent}/**\n${safe.map((l) => `${indent} *${l ? ` ${l}` : ''}\n`).join('')}${indent} */\n`;
}

interface Token {
  kind: 'comment' | 'word' | 'number' | 'punct' | 'directive';
  text: string;
  line: number;
}

/** proto.h as tokens; a preprocessor line is one token (its trailing comment is split off). */
function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = true;
  const fail = (what: string): never => {
    throw new Error(`proto.h line ${line}: ${what}; teach scripts/generate-protocol.ts about it`);
  };
  while (i < source.length) {
    const c = source[i]!;
    if (c === '\n') { line++; i++; lineStart = true; continue; }
    if (/\s/.test(c)) { i++; continue; }
    if (source.startsWith('/*', i)) {
      const end = source.indexOf('*/', i + 2);
      if (end < 0) fail('an unterminated comment');
      const text = source.slice(i, end + 2);
      tokens.push({ kind: 'comment', text, line });
      line += text.split('\n').length - 1;
      i = end + 2;
      continue;
    }
    if (source.startsWith('//', i)) fail('a // comment');
    if (c === '#') {
      if (!lineStart) fail('a # in the middle of a line');
      let end = source.indexOf('\n', i);
      if (end < 0) end = source.length;
      let text = source.slice(i, end);
      const comment = text.indexOf('/*');
      if (comment >= 0) {
        if (!text.trimEnd().endsWith('*/')) fail('a comment that goes on past a #define line');
        tokens.push({ kind: 'directive', text: text.slice(0, comment).trim(), line });
        tokens.push({ kind: 'comment', text: text.slice(comment).trim(), line });
      } else {
        tokens.push({ kind: 'directive', text: text.trim(), line });
      }
      i = end;
      continue;
    }
    lineStart = false;
    const word = /^[A-Za-z_]\w*/.exec(source.slice(i));
    if (word) { tokens.push({ kind: 'word', text: word[0], line }); i += word[0].length; continue; }
    const number = /^\d+u?/.exec(source.slice(i));
    if (number) { tokens.push({ kind: 'number', text: number[0], line }); i += number[0].length; continue; }
    if ('{}=,;'.includes(c)) { tokens.push({ kind: 'punct', text: c, line }); i++; continue; }
    fail(`an unexpected character '${c}'`);
  }
  return tokens;
}

function integer(text: string, where: string): number {
  const value = Number(text.replace(/u$/, ''));
  if (!Number.isSafeInteger(value)) throw new Error(`proto.h: ${where} is not an integer (${text})`);
  return value;
}

/**
 * A #define's value as a TypeScript expression: a number or a product of numbers (`16u * 1024u`),
 * nothing a reader of both files would have to evaluate differently.
 */
function defineValue(expression: string, name: string): string {
  const plain = expression.replace(/^\((.*)\)$/, '$1').trim();
  const factors = plain.split('*').map((f) => f.trim());
  if (factors.some((f) => !/^\d+u?$/.test(f))) {
    throw new Error(`proto.h: #define ${name} ${expression} is not a number or a product of numbers; teach scripts/generate-protocol.ts about it`);
  }
  return factors.map((f) => String(integer(f, name))).join(' * ');
}

interface Parsed {
  out: string[];
  defines: Map<string, string>;
  structFieldCounts: Map<string, number>;
}

function parse(tokens: Token[]): Parsed {
  const out: string[] = [];
  const defines = new Map<string, string>();
  const structFieldCounts = new Map<string, number>();
  let pendingDoc: string[] | undefined;
  let i = 0;
  const at = (offset = 0): Token | undefined => tokens[i + offset];
  const expect = (text: string): void => {
    const t = tokens[i];
    if (t?.text !== text) throw new Error(`proto.h line ${t?.line ?? 'end'}: expected '${text}', found '${t?.text ?? 'the end'}'`);
    i++;
  };
  /** A comment starting on `line` right after the current token: the trailing comment of it. */
  const trailing = (line: number): string[] | undefined => {
    const t = at();
    if (t?.kind === 'comment' && t.line === line) { i++; return commentLines(t.text); }
    return undefined;
  };

  while (i < tokens.length) {
    const t = tokens[i]!;
    if (t.kind === 'comment') {
      // The file's header (before the include guard) is proto.h's own introduction.
      pendingDoc = out.length === 0 && defines.size === 0 && i === 0 ? undefined : commentLines(t.text);
      i++;
      continue;
    }
    if (t.kind === 'directive') {
      i++;
      const define = /^#define\s+(\w+)(?:\s+(.+))?$/.exec(t.text);
      if (/^#(ifndef|endif)\b/.test(t.text) || /^#include\s+<stdint\.h>$/.test(t.text) || define?.[1] === 'GVMI_PROTO_H') {
        pendingDoc = undefined;
        continue;
      }
      if (!define?.[2]) throw new Error(`proto.h line ${t.line}: '${t.text}' is not a #define of a number; teach scripts/generate-protocol.ts about it`);
      const [, name, expression] = define as unknown as [string, string, string];
      const value = defineValue(expression, name);
      defines.set(name, value);
      const doc = trailing(t.line) ?? pendingDoc;
      out.push(`${doc ? jsdoc(doc, '') : ''}export const ${name} = ${value};\n`);
      pendingDoc = undefined;
      continue;
    }
    if (t.text === 'enum') {
      const cName = at(1)?.text ?? '';
      const mapping = ENUMS[cName];
      if (!mapping) throw new Error(`proto.h line ${t.line}: enum ${cName} has no TypeScript name; add it to ENUMS in scripts/generate-protocol.ts`);
      i += 2;
      expect('{');
      let body = '';
      let sawMember = false;
      while (at()?.text !== '}') {
        const m = at();
        if (!m) throw new Error(`proto.h: enum ${cName} does not end`);
        if (m.kind === 'comment') {
          body += commentLines(m.text).map((l) => `  //${l ? ` ${l}` : ''}\n`).join('');
          i++;
          continue;
        }
        if (m.kind !== 'word') throw new Error(`proto.h line ${m.line}: expected a member of enum ${cName}, found '${m.text}'`);
        i++;
        expect('=');
        const v = at();
        if (v?.kind !== 'number') throw new Error(`proto.h line ${m.line}: ${m.text} needs a plain number as its value`);
        i++;
        const value = integer(v.text, m.text);
        let doc = trailing(v.line);
        if (at()?.text === ',') { i++; doc ??= trailing(v.line); }
        const tsName = m.text.startsWith(mapping.prefix) ? m.text.slice(mapping.prefix.length) : m.text;
        body += `${doc ? jsdoc(doc, '  ') : ''}  ${tsName}: ${value},\n`;
        sawMember = true;
      }
      if (!sawMember) throw new Error(`proto.h: enum ${cName} is empty`);
      i++;
      expect(';');
      const doc = pendingDoc ? jsdoc([...pendingDoc, '', `proto.h enum ${cName}`], '') : jsdoc([`proto.h enum ${cName}`], '');
      out.push(`${doc}export const ${mapping.ts} = {\n${body}} as const;\nexport type ${mapping.ts} = (typeof ${mapping.ts})[keyof typeof ${mapping.ts}];\n`);
      pendingDoc = undefined;
      continue;
    }
    if (t.text === 'struct') {
      const cName = at(1)?.text ?? '';
      const mapping = STRUCTS[cName];
      if (!mapping) throw new Error(`proto.h line ${t.line}: struct ${cName} has no TypeScript name; add it to STRUCTS in scripts/generate-protocol.ts`);
      i += 2;
      expect('{');
      let body = '';
      let count = 0;
      while (at()?.text !== '}') {
        const type = at();
        if (type?.text !== 'uint64_t') throw new Error(`proto.h line ${type?.line ?? 'end'}: struct ${cName} may hold only uint64_t fields`);
        i++;
        const field = at();
        if (field?.kind !== 'word') throw new Error(`proto.h line ${type.line}: a field name after uint64_t`);
        i++;
        expect(';');
        const doc = trailing(field.line);
        const camel = field.text.replace(/_([a-z0-9])/g, (_, ch: string) => ch.toUpperCase());
        body += `${doc ? jsdoc(doc, '  ') : ''}  '${camel}',\n`;
        count++;
      }
      i++;
      expect(';');
      structFieldCounts.set(mapping.countDefine, count);
      const doc = jsdoc([...(pendingDoc ?? []), ...(pendingDoc ? [''] : []), `proto.h struct ${cName}: one little-endian u64 per name`], '');
      out.push(`${doc}export const ${mapping.ts} = [\n${body}] as const;\n`);
      pendingDoc = undefined;
      continue;
    }
    throw new Error(`proto.h line ${t.line}: unexpected '${t.text}'; teach scripts/generate-protocol.ts about it`);
  }
  return { out, defines, structFieldCounts };
}

/** The text of src/agent/protocol.ts for this proto.h. Throws on anything it cannot mirror. */
export function generateProtocol(protoH: string): string {
  const { out, defines, structFieldCounts } = parse(tokenize(protoH));
  for (const [define, count] of structFieldCounts) {
    if (defines.get(define) !== String(count)) {
      throw new Error(`proto.h: ${define} is ${defines.get(define) ?? 'missing'} but the struct has ${count} fields`);
    }
  }
  const header = [
    '// Generated from runtime/include/proto.h by scripts/generate-protocol.ts: do not edit.',
    '// Change proto.h, then run `npm run generate:protocol` (test/unit/agent/protocol-mirror.test.ts',
    '// fails while this file is not what proto.h gives).',
    '',
  ].join('\n');
  return `${header}\n${out.join('\n')}`;
}

export const PROTO_H = fileURLToPath(new URL('../runtime/include/proto.h', import.meta.url));
export const PROTOCOL_TS = fileURLToPath(new URL('../src/agent/protocol.ts', import.meta.url));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(PROTOCOL_TS, generateProtocol(readFileSync(PROTO_H, 'utf8')));
  console.log(`wrote ${PROTOCOL_TS}`);
}
