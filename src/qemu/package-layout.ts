/**
 * Where gvmi-test runs from: its own git checkout (a Makefile, runtime sources, `make runtime`) or
 * an installed npm package (node_modules/gvmi-test: dist/, the guest runtime shipped in it, no
 * Makefile). The two need different fixes for the same problem, so every hint that names a
 * command asks here which one to name.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: dist/qemu/x.js and src/qemu/x.ts both sit two levels below it. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A checkout has what builds the runtime; a package never ships it (package.json `files`). */
export function isCheckout(root: string = packageRoot): boolean {
  return existsSync(join(root, 'Makefile')) && existsSync(join(root, 'runtime', 'build.sh'));
}

/** The command that installs QEMU and squashfs-tools, as this installation (a checkout or not) should run it. */
export function installToolsCommand(checkout: boolean = isCheckout()): string {
  return checkout
    ? 'make deps   (or: sudo apt-get install -y qemu-system-x86 squashfs-tools)'
    : 'npx gvmi-test setup   (or: sudo apt-get install -y qemu-system-x86 squashfs-tools)';
}

/** What brings back a missing guest runtime: a build in a checkout, a reinstall of a package. */
export function restoreRuntimeCommand(checkout: boolean = isCheckout()): string {
  return checkout
    ? 'make runtime   (in the gvmi-test checkout)'
    : 'npm install gvmi-test   (the package ships the runtime: reinstall it), then npx gvmi-test setup';
}
