#!/usr/bin/env bash
# The seed's Dockerfile scenario without Docker:
#     FROM debian:bookworm  +  VOLUME /golem/input /golem/output  +  WORKDIR /golem/work
# as a `docker save` tarball (one layer: a debootstrap --variant=minbase root filesystem), with a
# file baked under /golem/input to show volume shadowing. Cached by the hash of this script:
#     $GVMI_TEST_CACHE/debian/<hash>/seed-debian.docker.tar   (path printed on stdout)
set -euo pipefail
cache=${GVMI_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gvmi-test}
hash=$(sha256sum "$0" | cut -c1-16)
out="$cache/debian/$hash"
if [ -f "$out/seed-debian.docker.tar" ]; then echo "$out/seed-debian.docker.tar"; exit 0; fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
# The mirror apt already uses on this machine, else Debian's default.
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d)
trap '$SUDO rm -rf "$work"' EXIT
echo "seed-debian: debootstrap --variant=minbase bookworm from $mirror (once; cached)" >&2
$SUDO debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >&2
$SUDO rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
$SUDO mkdir -p "$work/rootfs/golem/input" "$work/rootfs/golem/output" "$work/rootfs/golem/work"
echo "baked into the image under a VOLUME path: hidden at run time" | $SUDO tee "$work/rootfs/golem/input/baked.txt" >/dev/null

mkdir -p "$work/image/layer"
$SUDO tar -C "$work/rootfs" --numeric-owner -cf "$work/image/layer/layer.tar" .
$SUDO chown "$(id -u):$(id -g)" "$work/image/layer/layer.tar"
cat > "$work/image/config.json" <<'JSON'
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["bash"],"WorkingDir":"/golem/work","Volumes":{"/golem/input":{},"/golem/output":{}}},"rootfs":{"type":"layers","diff_ids":[]}}
JSON
echo '[{"Config":"config.json","RepoTags":["gvmi-test/seed-debian:latest"],"Layers":["layer/layer.tar"]}]' > "$work/image/manifest.json"
mkdir -p "$out.tmp"
tar -C "$work/image" -cf "$out.tmp/seed-debian.docker.tar" manifest.json config.json layer/layer.tar
rm -rf "$out"; mv "$out.tmp" "$out"
echo "$out/seed-debian.docker.tar"
