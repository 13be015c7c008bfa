#!/usr/bin/env bash
# Download the pure-Python wheels that benchmarks/gpu_check.py installs offline on a GPU
# machine without network access (it has NumPy, SciPy, CuPy and pytest, but not these).
# Run from anywhere on a machine with network; extra arguments go to `pip download`
# (for example --python-version 3.10 when the GPU machine runs an older Python).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python3 -m pip download --no-deps --only-binary=:all: -d "$here/wheels" \
    "array-api-compat>=1.11,<2" "array-api-strict>=2.2" "$@"
ls -l "$here/wheels"
