#!/usr/bin/env bash
# Fill benchmarks/wheels/ (ignored by git) with the wheels benchmarks/gpu_check.sh installs on a GPU
# machine without network, for that machine's Python version (its `python3 --version`; default 3.12):
#   bash benchmarks/gpu_wheels.sh 3.12
# Run it on a machine with network; the folder then travels with the working tree (~44 MB of the 64 MiB a
# run may carry: numpy and pillow, ~24 MB more, come with torch and torchvision and are left out).
# Each wheel without its dependencies (gpu_check.sh names every module it needs), at the versions of
# constraints.txt; got10k and wget are published as sources only: built here as pure-Python wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${1:-3.12}
PYTHON=${PYTHON:-.venv/bin/python}
mkdir -p benchmarks/wheels
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$VERSION" \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -c constraints.txt -d benchmarks/wheels kornia kornia_rs av six pyyaml tqdm psutil
"$PYTHON" -m pip wheel --quiet --no-deps -c constraints.txt -w benchmarks/wheels got10k wget
du -sh benchmarks/wheels
