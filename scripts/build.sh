#!/usr/bin/env bash
# Configures and builds kiln into build/ (Release). Extra arguments go to CMake.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" > build.configure.log 2>&1 || {
  cat build.configure.log; exit 1; }
ninja -C build -j"$jobs"
