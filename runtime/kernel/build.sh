#!/usr/bin/env bash
# Builds the guest kernel: Debian's linux-source-6.1 + `make tinyconfig` + gvmi.config, as an
# uncompressed PVH vmlinux (QEMU -kernel boots it directly; decompressing a bzImage under
# emulation costs seconds). The result is cached by the hash of the source package version, the
# fragment and this script, so it is built once per change:
#   $GVMI_TEST_CACHE/kernel/<hash>/vmlinux
# Prints the vmlinux path on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${GVMI_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gvmi-test}
tarball=/usr/src/linux-source-6.1.tar.xz
[ -f "$tarball" ] || { echo "runtime/kernel: $tarball missing (run: make deps)" >&2; exit 1; }

src_version=$(dpkg-query -W -f='${Version}' linux-source-6.1)
hash=$( { echo "$src_version"; cat "$here/gvmi.config" "$here/build.sh"; } | sha256sum | cut -c1-16)
out="$cache/kernel/$hash"
if [ -f "$out/vmlinux" ]; then echo "$out/vmlinux"; exit 0; fi

work="$cache/kernel-build/$hash"
rm -rf "$work"; mkdir -p "$work"
echo "runtime/kernel: building linux $src_version ($hash), a few minutes on 2 cores" >&2
tar -xf "$tarball" -C "$work"
ksrc="$work/linux-source-6.1"
make -C "$ksrc" ARCH=x86_64 -s tinyconfig >&2
KCONFIG_CONFIG="$ksrc/.config" "$ksrc/scripts/kconfig/merge_config.sh" -m -O "$ksrc" \
  "$ksrc/.config" "$here/gvmi.config" >/dev/null
make -C "$ksrc" ARCH=x86_64 -s olddefconfig >&2

# A symbol whose dependencies are unmet is dropped silently by olddefconfig: refuse that.
dropped=0
while IFS= read -r line; do
  case "$line" in CONFIG_*=y) grep -qx "$line" "$ksrc/.config" || { echo "runtime/kernel: $line did not survive olddefconfig" >&2; dropped=1; } ;; esac
done < "$here/gvmi.config"
[ "$dropped" -eq 0 ] || exit 1

make -C "$ksrc" ARCH=x86_64 -s -j"$(nproc)" vmlinux >&2
mkdir -p "$out.tmp"
cp "$ksrc/vmlinux" "$out.tmp/vmlinux"
strip --strip-debug "$out.tmp/vmlinux" 2>/dev/null || true
cp "$ksrc/.config" "$out.tmp/config"
rm -rf "$out"; mv "$out.tmp" "$out"
rm -rf "$work"
echo "$out/vmlinux"
