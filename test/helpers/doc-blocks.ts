/**
 * The fenced code blocks of the README and docs/, for the test that runs them
 * (test/integration/readme.test.ts). A block runs as written unless the line before its fence
 * (blank lines between allowed) is `<!-- not-run: REASON -->`; CONTRIBUTING.md describes the
 * convention. Read synchronously: the test makes one vitest test per block at collection time.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export type BlockKind =
  /** sh, bash, shell: run by bash in the scratch project, gvmi-test on PATH. */
  | 'shell'
  /** TypeScript that imports gvmi-test/vitest: a test file of the scratch project's suite. */
  | 'vitest'
  /** Other TypeScript: compiled and run by node in the scratch project. */
  | 'script'
  /** Anything else: it must be marked not-run. */
  | 'unknown';

export interface DocBlock {
  /** Relative to the checkout. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The fence's info string (`ts`, `sh`, or empty). */
  lang: string;
  code: string;
  kind: BlockKind;
  /** The reason given by a `not-run` marker; undefined for a block that runs. */
  notRun?: string;
  /** A marker that says nothing (`<!-- not-run: -->`), or a `not-run` comment of another form. */
  badMarker?: string;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/;
const MARKER = /^\s*<!--\s*not-run\b(.*?)-->\s*$/;

function kindOf(lang: string, code: string): BlockKind {
  if (['sh', 'bash', 'shell'].includes(lang)) return 'shell';
  if (['ts', 'typescript'].includes(lang)) return /from\s+['"]gvmi-test\/vitest['"]/.test(code) ? 'vitest' : 'script';
  return 'unknown';
}

export function blocksOf(checkout: string, file: string): DocBlock[] {
  const lines = readFileSync(join(checkout, file), 'utf8').split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const [, indent = '', fence = '', lang = ''] = open;
    const body: string[] = [];
    let j = i + 1;
    // Closed by a fence of the same character, at least as long, with nothing after it.
    for (; j < lines.length && !new RegExp(`^\\s*${fence[0]}{${fence.length},}\\s*$`).test(lines[j]!); j++) {
      body.push(lines[j]!.startsWith(indent) ? lines[j]!.slice(indent.length) : lines[j]!.trimStart());
    }
    let before = i - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    const comment = before >= 0 ? lines[before]! : '';
    const marker = MARKER.exec(comment);
    const block: DocBlock = { file, line: i + 1, lang: lang.toLowerCase(), code: `${body.join('\n')}\n`, kind: kindOf(lang.toLowerCase(), body.join('\n')) };
    if (marker) {
      const reason = marker[1]!.replace(/^\s*:/, '').trim();
      if (!marker[1]!.trimStart().startsWith(':') || reason === '') block.badMarker = comment.trim();
      else block.notRun = reason;
    }
    blocks.push(block);
    i = j;
  }
  return blocks;
}

/** README.md and every docs/*.md, in that order. */
export function docBlocks(checkout: string): DocBlock[] {
  const docs = readdirSync(join(checkout, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => relative(checkout, join(checkout, 'docs', f)));
  return ['README.md', ...docs].flatMap((file) => blocksOf(checkout, file));
}

/** A name for the block's file in the scratch project: where it comes from, and a valid identifier. */
export function blockFileName(block: DocBlock): string {
  return `${block.file.replace(/\.md$/, '').replace(/[^A-Za-z0-9]+/g, '-').toLowerCase()}-line-${block.line}`;
}
