/**
 * The logger a library call uses when the caller gives none: silent, and without loading pino
 * (which costs tens of milliseconds on every cold start for nothing).
 */
import type { Logger } from 'pino';

const noop = (): void => {};

export const silentLogger: Logger = new Proxy({} as Logger, {
  get(_target, property) {
    if (property === 'child') return () => silentLogger;
    if (property === 'level') return 'silent';
    if (property === 'isLevelEnabled') return () => false;
    return noop;
  },
});
