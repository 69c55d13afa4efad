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
# With real data (NCF_DATA_DIR holding ml-1m): the default NeuMF, NVIDIA's large-batch preset (its time to
# quality, epoch by epoch) and EASE, on the GPU.
if [ -n "${NCF_DATA_DIR:-}" ] && [ -d "$NCF_DATA_DIR/ml-1m" ]; then
  for args in "" "--preset large-batch" "--model ease"; do
    python3 -m ncf train --data ml-1m $args --json --out "${TMPDIR:-/tmp}/gpu-check-runs" > "$out/train.log" 2>&1
    grep -v '^{' "$out/train.log" | tail -40
    grep '^{' "$out/train.log" | tail -1 >> "$out/ml1m.jsonl"
  done
fi
