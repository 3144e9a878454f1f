#!/bin/sh
# The provider-side script a requestor would upload and run: read inputs, write results to a volume.
set -e
echo "hello from the provider side, running as $(id -u) in $(pwd)"
for f in /golem/input/*.txt; do
  [ -f "$f" ] || continue
  wc -w < "$f" > "/golem/output/$(basename "$f" .txt).count"
done
echo "results: $(ls /golem/output)"
