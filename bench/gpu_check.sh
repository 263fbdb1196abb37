#!/usr/bin/env bash
# Every check that needs an NVIDIA GPU, in one run of a few minutes (device time is short):
#   1. the CUDA tests: fast == book on cuDNN and on the fallback, an epoch with
#      torch.cuda.set_sync_debug_mode("error"), pinned batch copies, a GPU checkpoint on CPU;
#   2. bench/throughput.py --device cuda (the issue wants fast/book >= 10 in the book setting);
#   3. bench/book_run.py --device cuda (the book's 500 epochs with each implementation).
#
#   bash bench/gpu_check.sh [OUTDIR]        (logs go to OUTDIR, default $OUT or /tmp/gpu_check)
#
# Needs python3 with a CUDA build of torch, pytest and hypothesis; not Textual (only the
# engine is tested). The book's file ships in the checkout (engine/corpora/timemachine.txt).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/gpu_check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! python3 -c "import torch" 2>/dev/null; then
    echo "gpu_check: python3 cannot import torch" >&2
    exit 2
fi
if ! python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing to check" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuDNN', torch.backends.cudnn.version())" \
    | tee -a "$out/gpu.txt"

status=0
python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_fast.py tests/test_checkpoint.py \
    2>&1 | tee "$out/tests.txt" || status=1
python3 bench/throughput.py --device cuda --rounds 5 2>&1 | tee "$out/throughput.txt" || status=1
python3 bench/book_run.py --device cuda 2>&1 | tee "$out/book_run.txt" || status=1
exit $status
