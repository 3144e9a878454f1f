#!/usr/bin/env bash
# A busybox root filesystem laid out like the Golem seed's Dockerfile, built without Docker.
# Usage: make-rootfs.sh DIR
set -euo pipefail
root=${1:?usage: make-rootfs.sh DIR}
rm -rf "$root"
mkdir -p "$root"/{bin,etc,tmp,root,golem/input,golem/output,golem/work}
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
# Baked under a VOLUME path: a provider hides it behind the (empty) volume. `inspect` says so.
echo 'this file is shadowed at run time' > "$root/golem/input/README.txt"
