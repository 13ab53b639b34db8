#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run the demo — build a plan
# from the shipped Fashion-MNIST model and classify the 10,000 test images.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
scripts/prepare_data.sh
exec build/tools/demo/kiln_fashion_demo --model models/fashion_cnn.onnx \
  --data build/data/fashion-mnist --reference models/fashion_cnn.reference.json \
  --plan build/fashion_cnn.plan "$@"
