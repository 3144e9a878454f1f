/** Parsers for repeatable and structured command-line options (commander argParsers). */
import { GvmiTestError } from '../errors.js';

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function parseKeyValue(entry: string, what: string): [string, string] {
  const eq = entry.indexOf('=');
  if (eq <= 0) throw new GvmiTestError('usage', `${what} ${JSON.stringify(entry)} must look like KEY=VALUE`);
  return [entry.slice(0, eq), entry.slice(eq + 1)];
}

/** `--entrypoint '["/bin/sh","-c"]'` (JSON, like a Dockerfile's exec form) or plain words. */
export function parseCommandWords(value: string, what: string): string[] {
  const trimmed = value.trim();
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new GvmiTestError('usage', `${what} looks like JSON but does not parse: ${value}`);
    }
    if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string')) {
      throw new GvmiTestError('usage', `${what} must be a JSON array of strings`);
    }
    return parsed;
  }
  return trimmed === '' ? [] : trimmed.split(/\s+/);
}

export function parsePositiveInt(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new GvmiTestError('usage', `${what} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}
