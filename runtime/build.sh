#!/usr/bin/env bash
# Builds the guest runtime: kernel (runtime/kernel/build.sh), the static init, and an uncompressed
# initramfs holding just the init (decompression is slow under emulation). Artefacts live in the
# cache, keyed by content hash; runtime/.build/runtime.json (not committed) tells the host where.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${GVMI_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gvmi-test}

kernel=$("$here/kernel/build.sh")

cc=musl-gcc
command -v musl-gcc >/dev/null || cc=gcc
cflags=(-static -Os -std=gnu11 -Wall -Wextra -Werror -I"$here/include")
sources=("$here"/init/*.c)
init_hash=$( { echo "$cc ${cflags[*]}"; cat "$here"/include/*.h "$here"/init/*.h "${sources[@]}" "$here/build.sh"; } | sha256sum | cut -c1-16)
out="$cache/runtime/$init_hash"
if [ ! -f "$out/initramfs.cpio" ]; then
  echo "runtime: building init ($cc, $init_hash)" >&2
  rm -rf "$out.tmp"; mkdir -p "$out.tmp/root"
  "$cc" "${cflags[@]}" -o "$out.tmp/root/init" "${sources[@]}"
  strip "$out.tmp/root/init"
  (cd "$out.tmp/root" && echo init | cpio --quiet -o -H newc --owner=0:0 > ../initramfs.cpio)
  cp "$out.tmp/root/init" "$out.tmp/init"; rm -rf "$out.tmp/root"
  rm -rf "$out"; mv "$out.tmp" "$out"
fi

# On x86-64 hosts, a host tool: the TSC frequency a TCG guest is told (runtime/host/tsc_khz.c).
tsc_tool=""
if [ "$(uname -m)" = x86_64 ]; then
  tool_hash=$( { echo "$cc ${cflags[*]}"; cat "$here/host/tsc_khz.c"; } | sha256sum | cut -c1-16)
  tsc_tool="$cache/runtime/host-$tool_hash/tsc-khz"
  if [ ! -x "$tsc_tool" ]; then
    echo "runtime: building the host's tsc-khz ($cc, $tool_hash)" >&2
    mkdir -p "$(dirname "$tsc_tool")"
    "$cc" "${cflags[@]}" -o "$tsc_tool.tmp" "$here/host/tsc_khz.c"
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
