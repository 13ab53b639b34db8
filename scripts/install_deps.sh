#!/usr/bin/env bash
# Installs what kiln needs from Debian's packages (by name, with apt-get), only when missing.
# (Python: the headers, pybind11, NumPy, pytest and venv/pip build and test kiln's Python package.)
#   --with-python: also the Python packages that retrain the demo model (models/train_fashion_cnn.py)
set -euo pipefail
pkgs=(g++ cmake ninja-build libgtest-dev libgmock-dev libonnx-testdata dataset-fashion-mnist gzip
      python3-dev python3-venv python3-pip pybind11-dev python3-numpy python3-pytest)
if [[ "${1:-}" == "--with-python" ]]; then pkgs+=(python3-torch python3-onnx python3-numpy); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "kiln: installing ${missing[*]}"
  sudo_cmd=""
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -q
  $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
