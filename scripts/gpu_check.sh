#!/usr/bin/env bash
# The one GPU check: builds kiln with the CUDA backend (ninja -j16), runs the whole test suite
# including the GPU-labelled tests (per-op cases and ONNX conformance on the CUDA backend), the
# demo on the GPU, and the peer benchmark (bench/peers.py), then prints a short table.
# Runs on the device machine; the ONNX node tests and Fashion-MNIST travel in .device_data/.
#   scripts/gpu_check.sh [--skip-tests] [--skip-conformance] [--skip-bench] [peers.py options...]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/kiln_out}
mkdir -p "$out"
data=.device_data
skip_tests=0; skip_bench=0; skip_conf=0; peer_args=()
for a in "$@"; do
  case "$a" in
    --skip-tests) skip_tests=1 ;;
    --skip-bench) skip_bench=1 ;;
    --skip-conformance) skip_conf=1 ;;
    *) peer_args+=("$a") ;;
  esac
done
{
  echo "== machine"; date -u; uname -r
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
} | tee "$out/machine.txt"
start=$(date +%s)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DKILN_ONNX_TESTDATA="$PWD/$data/node" > "$out/configure.log" 2>&1 || { tail -40 "$out/configure.log"; exit 1; }
grep "kiln:" "$out/configure.log"
ninja -C build-gpu -j16 > "$out/build.log" 2>&1; build_rc=$?
build_s=$(( $(date +%s) - start ))
if [[ $build_rc -ne 0 ]]; then grep -E "error|FAILED" -A3 "$out/build.log" | head -60; exit 1; fi
mkdir -p build-gpu/data/fashion-mnist
for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  gzip -dc "$data/fashion-mnist/$f.gz" > build-gpu/data/fashion-mnist/$f
done
test_rc=-; gpu_line=-; conf_cuda=-; conf_cpu=-
if [[ $skip_tests -eq 0 ]]; then
  (cd build-gpu && timeout 300 ctest --output-on-failure -j4 -E "conformance|gpu$" > "$out/ctest.log" 2>&1); test_rc=$?
  grep -E "tests passed|Failed|\*\*\*" "$out/ctest.log" | tail -15
  timeout 200 build-gpu/tests/kiln_gpu_tests > "$out/gpu_tests.log" 2>&1
  gpu_line=$(grep -E "PASSED|FAILED  \]|SKIPPED" "$out/gpu_tests.log" | tail -3 | tr '\n' ' ')
  grep -E "^\[  FAILED|Failure|error" "$out/gpu_tests.log" | head -30
fi
if [[ $skip_tests -eq 0 && $skip_conf -eq 0 ]]; then
  build-gpu/tests/kiln_conformance --data "$data/node" --jobs 12 > "$out/conformance_cpu.log" 2>&1
  conf_cpu=$(tail -1 "$out/conformance_cpu.log")
  build-gpu/tests/kiln_conformance --data "$data/node" --jobs 8 --device cuda --verbose \
    --expected tests/onnx/expected_passes.txt --except tests/onnx/cuda_differences.txt \
    > "$out/conformance_cuda.log" 2>&1
  conf_cuda="$(grep -c REGRESSION "$out/conformance_cuda.log") regressions; $(tail -1 "$out/conformance_cuda.log")"
  grep REGRESSION "$out/conformance_cuda.log" | head -40
fi
demo=$(build-gpu/tools/demo/kiln_fashion_demo --model models/fashion_cnn.onnx \
  --data build-gpu/data/fashion-mnist --reference models/fashion_cnn.reference.json \
  --plan build-gpu/demo.plan 2>&1 | grep -E "accuracy|equals|img/s|device" | tr '\n' ' ')
peers=-
if [[ $skip_bench -eq 0 ]]; then
  python3 bench/peers.py --kiln build-gpu/tools/kiln/kiln --work build-gpu/peers \
    --json "$out/peers.json" "${peer_args[@]}" 2>&1 | tee "$out/peers.log" | tail -40
fi
echo
echo "| check | result |"
echo "|---|---|"
echo "| build (ninja -j16) | rc $build_rc, ${build_s} s |"
echo "| ctest (all but conformance) | rc $test_rc, $(grep -E 'tests passed' "$out/ctest.log" 2>/dev/null) |"
echo "| kiln_gpu_tests | $gpu_line |"
echo "| conformance cpu | $conf_cpu |"
echo "| conformance cuda | $conf_cuda |"
echo "| demo (default device) | $demo |"
