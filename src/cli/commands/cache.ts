/**
 * `gvmi-test cache [list|prune|clear]`: what is cached and how big (src/cache/cache-inventory.ts),
 * and making room (src/cache/cache-cleanup.ts). `clear` asks first on a terminal; elsewhere it
 * needs --yes, so a script never wipes the cache by a typo.
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { GvmiTestError } from '../../errors.js';
import { formatBytes, writeLine, type CliIo } from '../io.js';
import { printable } from '../../terminal-safe.js';
import type { CacheEntry, CacheInventory } from '../../cache/cache-inventory.js';
import type { CleanupResult } from '../../cache/cache-cleanup.js';

const ACTIONS = ['list', 'prune', 'clear'] as const;
type Action = (typeof ACTIONS)[number];
/** Classes with many small entries: counted, not listed one by one (--json lists them). */
const COUNTED_ONLY = new Set(['digests', 'memos']);
/** Classes whose entries are marked (touched) on every use: their time is the last use. */
const USED_WHEN_MARKED = new Set(['snapshots', 'images']);

function entryJson(e: CacheEntry): Record<string, unknown> {
  return { name: e.name, paths: e.paths, bytes: e.bytes, modified: e.modified.toISOString(), ...(e.inUse !== undefined ? { inUse: e.inUse } : {}), ...(e.note ? { note: e.note } : {}) };
}

function inventoryJson(inventory: CacheInventory): Record<string, unknown> {
  return {
    dir: inventory.dir,
    snapshotDir: inventory.snapshotDir,
    bytes: inventory.bytes,
    classes: inventory.classes.map((c) => ({ class: c.class, description: c.description, count: c.count, bytes: c.bytes, entries: c.entries.map(entryJson) })),
  };
}

function printInventory(io: CliIo, inventory: CacheInventory): void {
  const out = (line: string): void => writeLine(io.stdout, line);
  out(`${printable(inventory.dir)}: ${formatBytes(inventory.bytes)}${inventory.snapshotDir.startsWith(`${inventory.dir}/`) ? '' : ` (snapshots in ${printable(inventory.snapshotDir)})`}`);
  for (const c of inventory.classes) {
    if (c.count === 0) continue;
    out(`  ${c.class.padEnd(14)} ${formatBytes(c.bytes).padStart(9)}  ${c.count} ${c.count === 1 ? 'entry' : 'entries'}: ${c.description}`);
    if (COUNTED_ONLY.has(c.class)) continue;
    for (const e of c.entries) {
      const marks = [e.inUse ? 'in use' : undefined, e.note, `${USED_WHEN_MARKED.has(e.class) ? 'last used' : 'made'} ${e.modified.toISOString().slice(0, 16).replace('T', ' ')}`].filter(Boolean).join(', ');
      out(`    ${printable(e.name)}  ${formatBytes(e.bytes)}  (${printable(marks)})`);
    }
  }
  if (inventory.bytes === 0) out('  (empty)');
}

function printCleanup(io: CliIo, verb: string, result: CleanupResult): void {
  for (const note of result.notes) writeLine(io.stderr, `gvmi-test: ${note}`);
  const byClass = new Map<string, number>();
  for (const e of result.removed) byClass.set(e.class, (byClass.get(e.class) ?? 0) + 1);
  const what = [...byClass].map(([cls, n]) => `${n} ${cls}`).join(', ');
  writeLine(io.stdout, `${verb} ${result.removed.length} ${result.removed.length === 1 ? 'entry' : 'entries'}${what ? ` (${what})` : ''}, ${formatBytes(result.bytesFreed)} freed; ${formatBytes(result.after.bytes)} left in ${printable(result.after.dir)}`);
}

async function confirmed(io: CliIo, question: string): Promise<boolean> {
  const rl = createInterface({ input: io.stdin, output: io.stderr, terminal: false });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export function registerCache(program: Command, io: CliIo): void {
  program
    .command('cache')
    .description('list what gvmi-test caches (kernels, runtimes, snapshots, digests, converted images, the Debian test rootfs) and how big; prune or clear it')
    .argument('[action]', 'list (default): classes, sizes and entries; prune: remove what is no longer used (old kernels and runtimes, snapshots and converted images past their budgets, old memos); clear: remove everything gvmi-test cached', 'list')
    .option('-y, --yes', 'clear without asking (needed when stdin is not a terminal)')
    .option('--json', 'print the result as JSON')
    .action(async (action: string, flags: { yes?: boolean; json?: boolean }) => {
      if (!(ACTIONS as readonly string[]).includes(action)) {
        throw new GvmiTestError('usage', `cache ${action}: choose one of ${ACTIONS.join(', ')}`, { hint: 'gvmi-test cache --help' });
      }
      const { cacheInventory, currentRuntimePaths } = await import('../../cache/cache-inventory.js');
      const { clearCache, pruneCache } = await import('../../cache/cache-cleanup.js');
      switch (action as Action) {
        case 'list': {
          const runtimePaths = await currentRuntimePaths();
          const inventory = await cacheInventory(runtimePaths ? { runtimePaths } : {});
          if (flags.json) writeLine(io.stdout, JSON.stringify(inventoryJson(inventory), null, 2));
          else printInventory(io, inventory);
          return;
        }
        case 'prune': {
          const result = await pruneCache(await currentRuntimePaths());
          if (flags.json) writeLine(io.stdout, JSON.stringify({ action, removed: result.removed.map((e) => ({ class: e.class, ...entryJson(e) })), bytesFreed: result.bytesFreed, notes: result.notes, after: inventoryJson(result.after) }));
          else printCleanup(io, 'pruned', result);
          return;
        }
        case 'clear': {
          if (!flags.yes) {
            if (!io.stdin.isTTY) {
              throw new GvmiTestError('usage', 'cache clear: asks before removing, and stdin is not a terminal', { hint: 'gvmi-test cache clear --yes' });
            }
            const inventory = await cacheInventory();
            const removable = inventory.classes.filter((c) => c.class !== 'other');
            const count = removable.reduce((n, c) => n + c.count, 0);
            const bytes = removable.reduce((n, c) => n + c.bytes, 0);
            if (!(await confirmed(io, `remove ${count} cache entries (${formatBytes(bytes)}) from ${inventory.dir}? Snapshots, conversions and a package's runtime are remade on use; a checkout's kernel and init need \`make runtime\` again. [y/N] `))) {
              writeLine(io.stderr, 'gvmi-test: nothing removed');
              return;
            }
          }
          const result = await clearCache();
          if (flags.json) writeLine(io.stdout, JSON.stringify({ action, removed: result.removed.map((e) => ({ class: e.class, ...entryJson(e) })), bytesFreed: result.bytesFreed, after: inventoryJson(result.after) }));
          else printCleanup(io, 'cleared', result);
          return;
        }
      }
    });
}
