#!/usr/bin/env bash
# Builds the guest runtime: kernel (runtime/kernel/build.sh), the static init, and an uncompressed
# initramfs holding just the init (decompression is slow under emulation). Artefacts live in the
# cache, keyed by content hash; runtime/.build/runtime.json (not committed, never shipped: its
# paths are this machine's) tells a checkout's host code where. `npm pack` ships copies of them
# (scripts/stage-runtime.ts).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${GVMI_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gvmi-test}

kernel=$("$here/kernel/build.sh")

cc=musl-gcc
command -v musl-gcc >/dev/null || cc=gcc
# Compiled from $here with relative paths, and hashed by relative names and contents (plus the
# compiler's identity): the hashes, which snapshot keys include, are the same wherever the
# checkout or package lives.
cd "$here"
cflags=(-static -Os -std=gnu11 -Wall -Wextra -Werror -Iinclude)
sources=(init/*.c)
compiler="$cc ${cflags[*]} $("$cc" --version 2>/dev/null | head -n1)"
init_hash=$( { echo "$compiler"; sha256sum include/*.h init/*.h "${sources[@]}" build.sh; } | sha256sum | cut -c1-16)
# The guest formats a requestor's storage volumes as ext2 at boot with busybox's mke2fs (upstream
# ships a single-applet busybox mkfs.ext2 in its initramfs): Debian's busybox-static, in the
# initramfs as /mke2fs, its bytes part of the init's hash.
mke2fs=$(command -v busybox || true)
if [ -z "$mke2fs" ] || ! { ldd "$mke2fs" 2>&1 || true; } | grep -q 'not a dynamic executable'; then
  echo "runtime: a static busybox is needed for the guest's mke2fs: install busybox-static (make deps)" >&2
  exit 1
fi
init_hash=$( { echo "$init_hash"; sha256sum < "$mke2fs"; } | sha256sum | cut -c1-16)
out="$cache/runtime/$init_hash"
if [ ! -f "$out/initramfs.cpio" ]; then
  echo "runtime: building init ($cc, $init_hash)" >&2
  rm -rf "$out.tmp"; mkdir -p "$out.tmp/root"
  "$cc" "${cflags[@]}" -o "$out.tmp/root/init" "${sources[@]}"
  strip "$out.tmp/root/init"
  cp "$mke2fs" "$out.tmp/root/mke2fs"
  (cd "$out.tmp/root" && printf 'init\nmke2fs\n' | cpio --quiet -o -H newc --owner=0:0 > ../initramfs.cpio)
  cp "$out.tmp/root/init" "$out.tmp/init"; rm -rf "$out.tmp/root"
  rm -rf "$out"; mv "$out.tmp" "$out"
fi

# On x86-64 hosts, a host tool: the TSC frequency a TCG guest is told (runtime/host/tsc_khz.c).
tsc_tool=""
if [ "$(uname -m)" = x86_64 ]; then
  tool_hash=$( { echo "$compiler"; sha256sum host/tsc_khz.c; } | sha256sum | cut -c1-16)
  tsc_tool="$cache/runtime/host-$tool_hash/tsc-khz"
  if [ ! -x "$tsc_tool" ]; then
    echo "runtime: building the host's tsc-khz ($cc, $tool_hash)" >&2
    mkdir -p "$(dirname "$tsc_tool")"
    "$cc" "${cflags[@]}" -o "$tsc_tool.tmp" host/tsc_khz.c
    strip "$tsc_tool.tmp"
    mv "$tsc_tool.tmp" "$tsc_tool"
  fi
fi

mkdir -p "$here/.build"
kernel_hash=$(basename "$(dirname "$kernel")")
cat > "$here/.build/runtime.json.tmp" <<JSON
{
  "kernel": "$kernel",
  "kernelHash": "$kernel_hash",
  "initramfs": "$out/initramfs.cpio",
  "initHash": "$init_hash",
  "runtimeHash": "$kernel_hash-$init_hash",
  "tscKhzTool": "$tsc_tool"
}
JSON
mv "$here/.build/runtime.json.tmp" "$here/.build/runtime.json"
echo "runtime: kernel $kernel_hash, init $init_hash -> runtime/.build/runtime.json" >&2
