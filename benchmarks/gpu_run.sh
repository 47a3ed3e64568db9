#!/usr/bin/env bash
# The one prepared GPU session (run from the repository root on a CUDA machine that has torch, torchvision, scipy,
# scikit-image, matplotlib, tqdm and pytest; Triton only for torch.compile's inductor, which the library does not
# need otherwise): the CUDA tests, then the benchmark. Results go to $1. Extra benchmark options via BENCH_ARGS (e.g.
# BENCH_ARGS=--compile for torch.compile and CUDA graphs at batch 1).
set -u
out=${1:-gpu_out}
mkdir -p "$out"
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.txt"
python3 -c "
import importlib.util, sys, torch, torchvision
triton = importlib.import_module('triton').__version__ if importlib.util.find_spec('triton') else 'absent'
print(sys.version.split()[0], torch.__version__, torchvision.__version__, 'triton', triton)" | tee -a "$out/gpu.txt"
timeout "${TEST_TIMEOUT:-240}" python3 -m pytest -q -p no:cacheprovider --durations=8 -o addopts="-ra" tests/gpu \
    tests/metrics/test_localization.py::test_metrics_on_cuda_match_cpu 2>&1 | tee "$out/pytest_cuda.log"
timeout "${BENCH_TIMEOUT:-300}" python3 benchmarks/gpu_bench.py --json "$out/gpu_bench.json" --profile "$out/profile.txt" \
    --budget-s "${BENCH_BUDGET:-200}" ${BENCH_ARGS:-} 2>&1 | tee "$out/gpu_bench.log"
