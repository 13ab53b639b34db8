#!/usr/bin/env bash
# Builds kiln and runs the whole test suite on the device machine (Ubuntu 24.04, g++ 13, CMake 4),
# which has no Debian test-data packages: the ONNX node tests and the Fashion-MNIST test set
# travel with the call in .device_data/ (ignored by git). Ends with a short table.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/kiln_out}
mkdir -p "$out"
data=.device_data
{
  echo "== machine"; uname -a; g++ --version | head -1; cmake --version | head -1; nvidia-smi -L 2>/dev/null
} | tee "$out/machine.txt"
start=$(date +%s)
cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DKILN_ONNX_TESTDATA="$PWD/$data/node" > "$out/configure.log" 2>&1 || { tail -40 "$out/configure.log"; exit 1; }
ninja -C build-device -j16 > "$out/build.log" 2>&1; build_rc=$?
build_s=$(( $(date +%s) - start ))
[[ $build_rc -eq 0 ]] || { grep -E "error|Error" "$out/build.log" | head -40; }
mkdir -p build-device/data/fashion-mnist
for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  gzip -dc "$data/fashion-mnist/$f.gz" > build-device/data/fashion-mnist/$f
done
(cd build-device && ctest --output-on-failure -j8 > "$out/ctest.log" 2>&1); test_rc=$?
tail -25 "$out/ctest.log"
conf=$(build-device/tests/kiln_conformance --data "$data/node" --jobs 16 | tail -1)
demo=$(build-device/tools/demo/kiln_fashion_demo --model models/fashion_cnn.onnx \
  --data build-device/data/fashion-mnist --reference models/fashion_cnn.reference.json \
  --plan build-device/demo.plan --device cpu --threads 16 | grep -E "accuracy|equals")
echo
echo "| check | result |"
echo "|---|---|"
echo "| build (ninja -j16) | rc $build_rc, ${build_s} s |"
echo "| ctest | rc $test_rc, $(grep -E 'tests passed' "$out/ctest.log") |"
echo "| conformance | $conf |"
echo "$demo" | sed 's/^/| demo | /; s/$/ |/'
