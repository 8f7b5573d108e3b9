#!/usr/bin/env bash
# The prepared GPU check: on one H100/H200 with the pinned stack it ends inside 8 minutes and writes one JSON,
# bench/results/gpu_check-<device>.json (training atoms/s fp32/bf16 eager/compiled for two ladder sizes, model
# FLOP utilisation, peak memory against `atomforge plan`, MD steps/s against fairchem's calculator).
#   bash bench/gpu_check.sh                       # on the GPU machine, from the repository root
#   bash bench/gpu_check.sh --quick --out F.json  # the same code paths on CPU in seconds (the test suite's mode)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export WANDB_MODE=offline PYTHONUNBUFFERED=1
# 470 s: the script's own budget (420 s) stops starting cells; this stops a cell that hangs
exec timeout --signal=TERM 470 "$PY" bench/gpu_check.py "$@"
