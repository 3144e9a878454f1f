import { describe, expect, it } from 'vitest';
import { cycles, describeCycles, importGraph, moduleGraph, SRC, type ImportGraph } from '../../scripts/import-cycles.js';

const graphOf = (edges: Record<string, string[]>): ImportGraph => new Map(Object.entries(edges).map(([k, v]) => [k, new Set(v)]));

describe('no import loop in src/ (npx tsx scripts/import-cycles.ts lists them)', () => {
  const files = importGraph(SRC);

  it('reads the real import graph (a check of the reader: these imports exist)', () => {
    expect(files.get('index.ts')).toContain('errors.ts');
    expect(files.get('cli/program.ts')).toContain('cli/commands/run.ts');
    // A type-only import and a dynamic import count too.
    expect(files.get('image/static-findings.ts')).toContain('diagnostics/finding.ts');
    expect(files.get('cli/commands/serve.ts')).toContain('server/ws-server.ts');
  });

  it('between files', () => {
    expect(describeCycles(files)).toEqual([]);
  });

  it('between the folders under src/ (agent, image, vm, diagnostics, cli, …)', () => {
    const modules = moduleGraph(files);
    expect(describeCycles(modules.graph, modules.via)).toEqual([]);
  });
});

describe('the loop finder', () => {
  it('finds a two-file loop, a longer one, and a file importing itself; a chain is no loop', () => {
    const graph = graphOf({ a: ['b'], b: ['a'], c: ['d'], d: ['e'], e: ['c', 'f'], f: [], g: ['g'], h: ['a'] });
    expect(cycles(graph)).toEqual([['a', 'b'], ['c', 'd', 'e'], ['g']]);
    expect(cycles(graphOf({ a: ['b'], b: ['c'], c: [] }))).toEqual([]);
  });

  it('sees a loop between folders that no two files make, and names the imports that make it', () => {
    const files = graphOf({ 'image/inspect.ts': ['diagnostics/finding.ts'], 'diagnostics/finding.ts': [], 'diagnostics/static.ts': ['image/config.ts'], 'image/config.ts': [] });
    expect(cycles(files)).toEqual([]);
    const modules = moduleGraph(files);
    expect(describeCycles(modules.graph, modules.via)).toEqual([
      'diagnostics/ <-> image/: diagnostics/static.ts -> image/config.ts, image/inspect.ts -> diagnostics/finding.ts',
    ]);
  });
});
