#!/usr/bin/env bash
# GPU check in one command, for a machine with a CUDA GPU (about 5-10 minutes):
#   1. the fast PSA parity tests, on the CPU and on CUDA (every plan, forward and gradients,
#      NCHW and channels_last, float32 with TF32 off, plus float16/bfloat16 autocast);
#   2. the autotuner on CUDA: one module tuned cold, its choice printed (channels_last and
#      merged-group plans are in the CUDA candidate set);
#   3. `epsanet bench --device cuda`: fp32 and bf16+channels_last inference, fp32 training,
#      against the same-depth torchvision ResNet, with the rule's plans beside the measured ones.
# Results go to benchmarks/results/cuda-*.json; the table is printed.
#
#   bash benchmarks/device_check.sh                # epsanet50_small
#   bash benchmarks/device_check.sh epsanet50_small epsanet101_small epsanet50_large
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
MODELS=("${@:-epsanet50_small}")
RESULTS=benchmarks/results
mkdir -p "$RESULTS"

"$PYTHON" - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("benchmarks/device_check.sh needs a CUDA GPU, and torch sees none: run it on a GPU machine")
print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
PY

echo "## 1. parity tests (CPU and CUDA)"
"$PYTHON" -m pytest -q tests/test_fast_psa.py tests/test_autotune.py -m "not slow"

echo "## 2. autotuning one PSA module on CUDA (cold cache)"
EPSANET_CACHE_DIR="$(mktemp -d)" "$PYTHON" - <<'PY'
import logging, time, torch
from epsanet.layers import PSAModule
logging.basicConfig(level=logging.INFO, format="%(message)s")
for groups, channels, size in (((1, 4, 8, 16), 64, 56), ((32, 32, 32, 32), 128, 56)):
    psa = PSAModule(channels, groups=groups).cuda().eval()
    x = torch.randn(32, channels, size, size, device="cuda")
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        start = time.perf_counter()
        with torch.no_grad(), torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
            psa(x)
        torch.cuda.synchronize()
        print(f"groups {groups} {dtype}: tuned in {time.perf_counter() - start:.1f} s")
PY

echo "## 3. epsanet bench --device cuda"
"$PYTHON" -m epsanet bench "${MODELS[@]}" --device cuda --batch-sizes 1 32 --train-batch-size 32 \
    --untuned --repeats 20 --json "$RESULTS/cuda-bench.json"
