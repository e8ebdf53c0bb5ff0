#!/usr/bin/env bash
# The GPU benchmark on the device machine (see benchmarks/gpu.py's docstring for the wheels and the call).
# Wheels carried in .whl (NEURON) are installed into /tmp/site first; results go to $OUT (or here).
set -o pipefail
out="${OUT:-.}"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv | tee "$out/nvidia_smi.csv"
PYTHONUNBUFFERED=1 python3 -m benchmarks.gpu --out "$out/gpu.json" "$@" 2>&1 | tee "$out/gpu.log"
