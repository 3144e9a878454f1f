#!/usr/bin/env bash
# `make demo`: build the hello image without Docker, inspect it, and run a requestor's script in
# it under provider conditions, fetching the results.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
gvmi_test() { node "$repo/dist/cli/main.js" "$@"; }
work=$(mktemp -d /tmp/gvmi-demo-XXXXXX)
chmod 711 "$work"
trap 'rm -rf "$work"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "building the image from a busybox root filesystem (no Docker)"
bash "$here/make-rootfs.sh" "$work/rootfs"
gvmi_test build "$work/rootfs" -o "$work/hello.gvmi" \
  --volume /golem/input --volume /golem/output --workdir /golem/work --env GREETING=hello

step "inspecting it: what will surprise us on a provider"
gvmi_test inspect "$work/hello.gvmi"

step "running hello.sh as a requestor would (inputs in, results out)"
gvmi_test run "$work/hello.gvmi" --input "$here/words.txt" --output "$work/out" -- "$here/hello.sh"

step "results fetched from /golem/output"
find "$work/out/golem/output" -type f | while read -r f; do echo "$f: $(cat "$f")"; done
