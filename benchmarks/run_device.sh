#!/usr/bin/env bash
# Run every benchmark once on this machine and write the JSON results to $OUT
# (default: ./benchmark-results). On CUDA the scripts pick the full case (SD 1.5 batch 8
# at 512x512, SDXL batch 8 at 1024x1024); on CPU they pick the reduced case.
# Estimated time on one H200, from FLOP counts: 4 to 7 minutes, most of it SDXL anchor
# generation and the two SDXL builds. PYTHON must name an interpreter with CUDA torch,
# diffusers and transformers.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
OUT="${OUT:-benchmark-results}"
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1

"$PYTHON" -c 'import torch, diffusers; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "diffusers", diffusers.__version__)'
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null || true

if "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    "$PYTHON" -m benchmarks.trainer_overhead --arch sd15 --batch-size 8 --mixed-precision bf16 \
        --gradient-checkpointing --rounds 6 --steps 3 --json "$OUT/trainer_overhead_sd15.json"
    "$PYTHON" -m benchmarks.full_size --json "$OUT/full_size.json"
    "$PYTHON" -m benchmarks.full_size --arch sd15 --no-gradient-checkpointing --gen-images 0 \
        --json "$OUT/full_size_sd15_no_checkpointing.json"
    # The SDXL memory goal (batch 8 at 1024x1024 within 24 GB) with both memory savers on.
    "$PYTHON" -m benchmarks.full_size --arch sdxl --gen-images 0 --frozen-weights-dtype bf16 \
        --micro-batch-size 4 --warmup 1 --steps 3 --json "$OUT/full_size_sdxl_bf16_micro4.json"
    "$PYTHON" -m benchmarks.anchor_steps --arch sd15 --resolution 512 --images 16 --batch-size 8 \
        --json "$OUT/anchor_steps_sd15.json"
else
    "$PYTHON" -m benchmarks.trainer_overhead --json "$OUT/trainer_overhead_mid.json"
    "$PYTHON" -m benchmarks.full_size --json "$OUT/full_size.json"
    "$PYTHON" -m benchmarks.anchor_steps --json "$OUT/anchor_steps_mid.json"
fi
ls -l "$OUT"
