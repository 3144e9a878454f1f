/**
 * Byte counts for people: "812 B", "3.4 MiB", "120 GiB". `decimals` fixes the digits after the
 * point; by default one below 10 and none above, which reads best in tables.
 */
export function formatBytes(n: number, decimals?: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(decimals ?? (value < 10 ? 1 : 0))} ${units[unit]}`;
}
