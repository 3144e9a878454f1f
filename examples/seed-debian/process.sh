#!/bin/bash
# The provider-side script of the seed scenario: read every input, write a result per input.
# Intermediate data goes to the output volume: / is a 128 MB RAM overlay on a provider.
set -euo pipefail
mkdir -p /golem/output/scratch
for f in /golem/input/*.csv; do
  name=$(basename "$f" .csv)
  sort -t, -k2 -n "$f" > "/golem/output/scratch/$name.sorted"
  awk -F, '{ s += $2 } END { print s }' "$f" > "/golem/output/$name.sum"
done
rm -rf /golem/output/scratch
echo "processed $(ls /golem/input/*.csv | wc -l) file(s) on $(cat /etc/debian_version)"
