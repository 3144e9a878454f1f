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

mkdir -p "$here/.build"
kernel_hash=$(basename "$(dirname "$kernel")")
cat > "$here/.build/runtime.json.tmp" <<JSON
{
  "kernel": "$kernel",
  "kernelHash": "$kernel_hash",
  "initramfs": "$out/initramfs.cpio",
  "initHash": "$init_hash",
  "runtimeHash": "$kernel_hash-$init_hash"
}
JSON
mv "$here/.build/runtime.json.tmp" "$here/.build/runtime.json"
echo "runtime: kernel $kernel_hash, init $init_hash -> runtime/.build/runtime.json" >&2
