/**
 * The eviction rule shared by the caches that keep whole files by last use (snapshots, converted
 * images): newest first, each kept while the running total fits the budget; `keep` (the entry just
 * made or used) is never evicted, even when it alone is over the budget.
 */
export interface LruEntry {
  key: string;
  bytes: number;
  lastUsed: Date;
}

/** A budget in MiB from an environment variable (a negative or non-numeric value: the default). */
export function budgetBytesFromEnv(variable: string, defaultMiB: number): number {
  const mib = Number(process.env[variable] ?? defaultMiB);
  return (Number.isFinite(mib) && mib >= 0 ? mib : defaultMiB) * 1024 * 1024;
}

/** The entries to evict, oldest last-use first in the order given (callers pass newest first). */
export function entriesOverBudget<T extends LruEntry>(newestFirst: readonly T[], budgetBytes: number, keep?: string): T[] {
  const evicted: T[] = [];
  let total = 0;
  for (const entry of newestFirst) {
    total += entry.bytes;
    if (total > budgetBytes && entry.key !== keep) evicted.push(entry);
  }
  return evicted;
}
