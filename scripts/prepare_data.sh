#!/usr/bin/env bash
# Unpacks Fashion-MNIST (test set; training set for INT8 calibration) (Debian's dataset-fashion-mnist) into build/data for the demo
# and its test.
set -euo pipefail
cd "$(dirname "$0")/.."
data=build/data/fashion-mnist
mkdir -p "$data"
for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte train-images-idx3-ubyte train-labels-idx1-ubyte; do
  [[ -f "$data/$f" ]] || gzip -dc "/usr/share/datasets/fashion-mnist/$f.gz" > "$data/$f"
done
