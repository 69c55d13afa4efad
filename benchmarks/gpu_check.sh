#!/usr/bin/env bash
# Everything a lent GPU machine is for, in one go (under 5 minutes): the CUDA tests, then the GPU
# throughput benchmark at NVIDIA's scale. Figures land in ${OUT:-gpu-results}/ (JSON lines and logs).
#   bash benchmarks/gpu_check.sh            # on a machine with a CUDA GPU and this repo's requirements
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$out/cuda_tests.log" | tail -15
python3 benchmarks/gpu_bench.py "$@" 2>&1 | tee "$out/gpu_bench.jsonl"
