#!/usr/bin/env bash
# torch_export.sh: runs tests/torch_export.py (the cnnc export round trips)
# with Debian's python3-torch, which `make test` installs (.ci/deps test).
# Usage: torch_export.sh BUILD_DIR MNIST_DIR [NAME...]
set -u
cd "$(dirname "$0")/.."
py=/usr/bin/python3
if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
  echo "FAIL - $py cannot import torch and numpy: run bash .ci/deps test (python3-torch, python3-onnx)"
  echo "RESULT 1 1"
  exit 1
fi
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} exec "$py" tests/torch_export.py "$@"
