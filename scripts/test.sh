#!/usr/bin/env bash
# The README's second command: install what is missing, build, and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
data=build/data/fashion-mnist
mkdir -p "$data"
for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [[ -f "$data/$f" ]] || gzip -dc "/usr/share/datasets/fashion-mnist/$f.gz" > "$data/$f"
done
cd build
ctest --output-on-failure -j"$(nproc 2>/dev/null || echo 2)" "$@"
