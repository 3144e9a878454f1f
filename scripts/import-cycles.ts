/**
 * Import loops in src/: between files, and between the folders under src/ (agent, image, vm, …;
 * a file directly in src/ counts as its own module). `npx tsx scripts/import-cycles.ts` prints
 * them; test/unit/import-cycles.test.ts fails while there is one.
 *
 * A type-only import counts: a loop of types is still two modules that cannot be read, changed or
 * moved one without the other.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** file (relative to the root, `/`-separated) -> the files it imports. */
export type ImportGraph = Map<string, Set<string>>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

/** The file a relative specifier names: `./x.js` is `./x.ts`, a folder is its index.ts. */
function resolveSpecifier(from: string, specifier: string): string | undefined {
  const base = resolve(dirname(from), specifier);
  const candidates = [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => c.endsWith('.ts') && statSync(c, { throwIfNoEntry: false })?.isFile());
}

/** Every relative import (static, `export … from`, dynamic, type-only) of every .ts under `root`. */
export function importGraph(root: string): ImportGraph {
  const graph: ImportGraph = new Map();
  const name = (path: string): string => relative(root, path).split(sep).join('/');
  for (const file of sourceFiles(root)) {
    const imports = new Set<string>();
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = resolveSpecifier(file, fileName);
      if (!target) throw new Error(`${name(file)} imports ${fileName}, which is no file`);
      imports.add(name(target));
    }
    graph.set(name(file), imports);
  }
  return graph;
}

/** The same graph between modules: a file's first folder under the root, or the file itself. */
export function moduleGraph(graph: ImportGraph): { graph: ImportGraph; via: Map<string, string[]> } {
  const moduleOf = (file: string): string => (file.includes('/') ? `${file.split('/')[0]!}/` : file);
  const modules: ImportGraph = new Map();
  /** "a -> b" -> the file imports that make it, for the message. */
  const via = new Map<string, string[]>();
  for (const [file, imports] of graph) {
    const from = moduleOf(file);
    if (!modules.has(from)) modules.set(from, new Set());
    for (const target of imports) {
      const to = moduleOf(target);
      if (to === from) continue;
      modules.get(from)!.add(to);
      const key = `${from} -> ${to}`;
      via.set(key, [...(via.get(key) ?? []), `${file} -> ${target}`]);
    }
  }
  return { graph: modules, via };
}

/** Each group of nodes that import one another, round or through others (Tarjan's SCCs), sorted. */
export function cycles(graph: ImportGraph): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter++;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const group: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      group.push(member);
    } while (member !== node);
    if (group.length > 1 || graph.get(node)?.has(node)) found.push(group.sort());
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return found.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** One line per loop, with the imports between its members: what the test and the script print. */
export function describeCycles(graph: ImportGraph, via?: Map<string, string[]>): string[] {
  return cycles(graph).map((group) => {
    const edges = group.flatMap((from) => [...(graph.get(from) ?? [])]
      .filter((to) => group.includes(to))
      .flatMap((to) => via?.get(`${from} -> ${to}`) ?? [`${from} -> ${to}`]));
    return `${group.join(' <-> ')}: ${edges.join(', ')}`;
  });
}

export const SRC = fileURLToPath(new URL('../src', import.meta.url));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = importGraph(SRC);
  const modules = moduleGraph(files);
  const loops = [...describeCycles(files), ...describeCycles(modules.graph, modules.via)];
  for (const loop of loops) console.log(loop);
  if (loops.length === 0) console.log('no import loop in src/');
  process.exitCode = loops.length === 0 ? 0 : 1;
}
