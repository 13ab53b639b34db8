#!/usr/bin/env bash
# The one GPU check: builds kiln with the CUDA backend (ninja -j16), runs the whole test suite
# including the GPU-labelled tests (per-op cases mirrored on the CUDA backend, kiln_gpu_tests, and
# ONNX conformance on the CUDA backend, which counts passes with a host step apart), the demo on
# the GPU, the recurrent-layer benchmark (device kernel against the host fallback) and the peer
# benchmark (bench/peers.py), then prints a short table.
# Runs on the device machine; the ONNX node tests and Fashion-MNIST travel in .device_data/.
#   scripts/gpu_check.sh [--skip-tests] [--skip-conformance] [--skip-bench] [--skip-rnn]
#                        [--skip-demo] [--gpu-only] [--tuning[=PARTS]] [--int8[=PARTS]]
#                        [peers.py options...]
# --tuning runs bench/tuning_bench.py (issue 12's measurements: cold and warm builds, a profile
# plan, contexts, batch-1 latency; PARTS as its --parts, with --compile when peers get it).
# --int8 runs bench/int8_bench.py (issue 13's: ResNet-50 INT8 against FP16, calibration time,
# the Fashion-MNIST model's INT8 accuracy on the GPU).
# --gpu-only leaves out what CI already runs without a GPU (ctest's CPU entries, conformance on
# the CPU) and runs only the unit tests' GPU cases directly: for short device leases.
set -uo pipefail
cd "$(dirname "$0")/.."
# Logs go to build-gpu/logs; on the device machine ($OUT set) they come back as one archive
# ($OUT/gpu_check_logs.tgz), since only a few files return from a call.
out=build-gpu/logs
rm -rf "$out"; mkdir -p "$out"
pack_logs() { [[ -n "${OUT:-}" ]] && tar czf "$OUT/gpu_check_logs.tgz" -C "$out" . 2>/dev/null; }
trap pack_logs EXIT
data=.device_data
skip_tests=0; skip_bench=0; skip_conf=0; skip_rnn=0; skip_demo=0; gpu_only=0; tuning=""; int8=""; peer_args=()
for a in "$@"; do
  case "$a" in
    --skip-tests) skip_tests=1 ;;
    --skip-bench) skip_bench=1 ;;
    --skip-conformance) skip_conf=1 ;;
    --skip-rnn) skip_rnn=1 ;;
    --gpu-only) gpu_only=1 ;;
    --skip-demo) skip_demo=1 ;;
    --tuning) tuning=1,2,3,4 ;;
    --tuning=*) tuning=${a#--tuning=} ;;
    --int8) int8=1,2 ;;
    --int8=*) int8=${a#--int8=} ;;
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
for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte train-images-idx3-ubyte train-labels-idx1-ubyte; do
  # The training images (INT8 calibration) travel as their first 1,000 when they travel at all.
  [[ -f "$data/fashion-mnist/$f.gz" ]] && gzip -dc "$data/fashion-mnist/$f.gz" > build-gpu/data/fashion-mnist/$f
done
test_rc=-; gpu_line=-; mirror_line=-; conf_cuda=-; conf_cpu=-
if [[ $skip_tests -eq 0 ]]; then
  # Every GoogleTest case is its own ctest entry; the GPU-labelled binaries run once each below
  # (one process, one CUDA context) instead of once per case.
  if [[ $gpu_only -eq 0 ]]; then
    (cd build-gpu && timeout 300 ctest --output-on-failure -j16 -LE gpu -E conformance \
      > "$out/ctest.log" 2>&1); test_rc=$?
    grep -E "tests passed|Failed|\*\*\*" "$out/ctest.log" | tail -15
  else
    timeout 200 build-gpu/tests/kiln_unit_tests --gtest_filter='*Gpu*:*OnGpu*:*OnTheGpu*' \
      > "$out/ctest.log" 2>&1; test_rc=$?
    grep -E "^\[  (PASSED|FAILED)  \]|Failure" "$out/ctest.log" | head -20
  fi
  timeout 200 build-gpu/tests/kiln_gpu_tests > "$out/gpu_tests.log" 2>&1
  gpu_line=$(grep -E "PASSED|FAILED  \]|SKIPPED \]" "$out/gpu_tests.log" | grep -E "tests?[,.]" | tail -3 | tr '\n' ' ')
  grep -E "^\[  FAILED|Failure|error" "$out/gpu_tests.log" | head -30
  KILN_TEST_DEVICE=cuda timeout 200 build-gpu/tests/kiln_op_tests > "$out/op_mirror.log" 2>&1
  mirror_line="$(grep -E "^op mirror on cuda" "$out/op_mirror.log"); $(grep -E "^\[  (PASSED|FAILED)  \]" "$out/op_mirror.log" | tr '\n' ' ')"
  grep -E "^\[  FAILED|Failure" "$out/op_mirror.log" | head -30
fi
if [[ $skip_tests -eq 0 && $skip_conf -eq 0 ]]; then
  if [[ $gpu_only -eq 0 ]]; then
    build-gpu/tests/kiln_conformance --data "$data/node" --jobs 12 > "$out/conformance_cpu.log" 2>&1
    conf_cpu=$(tail -1 "$out/conformance_cpu.log")
  fi
  build-gpu/tests/kiln_conformance --data "$data/node" --jobs 8 --device cuda --verbose \
    --expected tests/onnx/expected_passes.txt --except tests/onnx/cuda_differences.txt \
    --host-allowed tests/onnx/cuda_host_steps.txt > "$out/conformance_cuda.log" 2>&1
  conf_cuda="$(grep -c REGRESSION "$out/conformance_cuda.log") regressions; $(tail -1 "$out/conformance_cuda.log")"
  grep REGRESSION "$out/conformance_cuda.log" | head -40
fi
demo=-
[[ $skip_demo -eq 0 ]] && demo=$(build-gpu/tools/demo/kiln_fashion_demo --model models/fashion_cnn.onnx \
  --data build-gpu/data/fashion-mnist --reference models/fashion_cnn.reference.json \
  --plan build-gpu/demo.plan > "$out/demo.log" 2>&1; echo "demo rc $?")
[[ $skip_demo -eq 0 ]] && demo="$(grep -E "accuracy|equal|MISMATCH|img/s|device|error" "$out/demo.log" | tr '\n' ' ') $demo"
# Recurrent layers: cuda.recurrent against the host fallback on the same exported models
# (bench/rnn_bench.py: bidirectional LSTM and GRU, batch 64, sequence 128, hidden 256).
rnn_line=-
if [[ $skip_rnn -eq 0 ]]; then
  mkdir -p build-gpu/rnn
  python3 bench/rnn_bench.py --work build-gpu/rnn > "$out/rnn_export.log" 2>&1
  rnn_line=""
  for m in lstm gru; do
    f=$(ls build-gpu/rnn/${m}_*.onnx 2>/dev/null | head -1)
    [[ -n "$f" && -f "$f" ]] || { rnn_line="export failed (rnn_export.log)"; break; }
    # The device plan: kiln bench (back-to-back enqueues); the host fallback is slow (the
    # reference in double on the host), so it runs once, profiled, and its Recurrent step counts.
    dev=$(build-gpu/tools/kiln/kiln bench "$f" --device cuda --iterations 20 --quiet 2>&1 | tee "$out/rnn_${m}_device.log" | grep -oE "[0-9.]+ ms each")
    host=$(timeout 120 build-gpu/tools/kiln/kiln run "$f" --device cuda --exclude-tactic cuda.recurrent --profile --quiet 2>&1 | tee "$out/rnn_${m}_host.log" | grep -E "Recurrent +cuda.host_fallback" | awk '{print $1 " ms"}')
    build-gpu/tools/kiln/kiln run "$f" --device cuda --seed 2 --output-dir build-gpu/rnn/$m.dev --quiet > /dev/null 2>&1
    timeout 120 build-gpu/tools/kiln/kiln run "$f" --device cpu --seed 2 --output-dir build-gpu/rnn/$m.cpu --quiet > /dev/null 2>&1
    cmp=$(for y in build-gpu/rnn/$m.cpu/*.npy; do build-gpu/tests/kiln_npy_compare build-gpu/rnn/$m.dev/$(basename $y) $y 1e-3 1e-4 | tail -1; done | sort | uniq -c | tr '\n' ' ')
    rnn_line+="$m: device ${dev:-?} (whole plan), host fallback step ${host:-?}, outputs vs CPU: $cmp; "
  done
fi
int8_line=-
if [[ -n "$int8" ]]; then
  timeout 420 python3 bench/int8_bench.py --kiln build-gpu/tools/kiln/kiln --work build-gpu/int8 \
    --parts "$int8" --json "$out/int8.json" --demo build-gpu/tools/demo/kiln_fashion_demo \
    --data build-gpu/data/fashion-mnist 2>&1 | tee "$out/int8_bench.log" | tail -8
  cp build-gpu/int8/int8_bench.log "$out/int8_commands.log" 2>/dev/null
  cp build-gpu/int8/r50_*_profile.txt "$out/" 2>/dev/null
  int8_line="see int8.json"
fi
tuning_line=-
if [[ -n "$tuning" ]]; then
  compile=(); for a in "${peer_args[@]}"; do [[ "$a" == --compile ]] && compile=(--compile); done
  timeout 420 python3 bench/tuning_bench.py --kiln build-gpu/tools/kiln/kiln --work build-gpu/tuning \
    --parts "$tuning" --json "$out/tuning.json" "${compile[@]}" 2>&1 | tee "$out/tuning_bench.log" | tail -12
  cp build-gpu/tuning/tuning_bench.log "$out/tuning_commands.log" 2>/dev/null
  tuning_line="see tuning.json"
fi
peers=-
if [[ $skip_bench -eq 0 ]]; then
  python3 bench/peers.py --kiln build-gpu/tools/kiln/kiln --work build-gpu/peers \
    --json "$out/peers.json" "${peer_args[@]}" 2>&1 | tee "$out/peers.log" | tail -40
fi
echo
echo "| check | result |"
echo "|---|---|"
echo "| build (ninja -j16) | rc $build_rc, ${build_s} s |"
echo "| ctest (all but conformance; --gpu-only: the unit tests' GPU cases) | rc $test_rc, $(grep -E 'tests passed|^\[  (PASSED|FAILED)  \]' "$out/ctest.log" 2>/dev/null | tr '\n' ' ') |"
echo "| kiln_gpu_tests | $gpu_line |"
echo "| op cases mirrored on cuda | $mirror_line |"
echo "| conformance cpu | $conf_cpu |"
echo "| conformance cuda | $conf_cuda |"
echo "| demo (default device) | $demo |"
echo "| recurrent layers (b64 s128) | $rnn_line |"
echo "| tuning (bench/tuning_bench.py) | $tuning_line |"
echo "| int8 (bench/int8_bench.py) | $int8_line |"
