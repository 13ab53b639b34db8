#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run the demo — build a plan
# from the shipped Fashion-MNIST model and classify the 10,000 test images.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
data=build/data/fashion-mnist
mkdir -p "$data"
for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [[ -f "$data/$f" ]] || gzip -dc "/usr/share/datasets/fashion-mnist/$f.gz" > "$data/$f"
done
exec build/tools/demo/kiln_fashion_demo --model models/fashion_cnn.onnx --data "$data" \
  --reference models/fashion_cnn.reference.json --plan build/fashion_cnn.plan "$@"
