#!/usr/bin/env bash
# The GPU check of issue 17 (benchmarks/gpu_check.py): CUDA end to end, packed = single, tokens/s,
# MFU and peak memory; writes gpu_check.json and gpu_check.md. From the repository root:
#   bash benchmarks/gpu_check.sh                 # one H100/H200, no network, <= 6 minutes
#   bash benchmarks/gpu_check.sh --smoke         # the same logic on the CPU, tiny sizes, < 2 min
#   bash benchmarks/gpu_check.sh --out DIR       # output directory (default results/gpu_check)
# The interpreter: $PYTHON, else .venv/bin/python, else python3. A hard limit of 6 minutes
# (GPU_CHECK_TIMEOUT seconds) stops a hung run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD/workflow${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --signal=TERM --kill-after=10 "${GPU_CHECK_TIMEOUT:-360}" \
    "$PYTHON" benchmarks/gpu_check.py "$@"
