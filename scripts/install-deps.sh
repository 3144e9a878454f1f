#!/usr/bin/env bash
# Installs the Debian packages gvmi-test needs, only those missing. Idempotent: a second run
# does nothing but a dpkg query. Uses sudo when not root.
set -euo pipefail

packages=(
  qemu-system-x86      # the VM monitor (TCG here, KVM on users' machines)
  qemu-utils           # qemu-img: the qcow2 disk of a requestor's storage volume
  squashfs-tools       # mksquashfs / unsquashfs: the .gvmi root filesystem
  linux-source-6.1     # the guest kernel source
  build-essential bc bison flex libelf-dev libssl-dev cpio xz-utils  # kernel build deps
  musl-tools           # a small static init
  busybox-static       # the tiny test image
  debootstrap          # the Debian test image
  podman               # a container engine for the Dockerfile -> engine -> .gvmi test (build IMAGE[:TAG])
  tmux                 # drives the interactive shell in tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "gvmi-test: installing Debian packages: ${missing[*]}" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
