#!/usr/bin/env bash
# Step-DPO with LoRA on one GPU: data from the model's own errors on MATH and GSM8K training
# problems (vLLM sampling, rollout localization), then LoRA training and evaluation.
#   pip install torch && pip install -e ".[vllm]"
set -euo pipefail
MODEL=${MODEL:-Qwen/Qwen2-7B-Instruct}
OUT=${OUT:-runs/lora}
stepdpo eval --model "$MODEL" --data math500 --backend vllm --out "$OUT/eval-before"
stepdpo pipeline --config configs/pipeline-qwen2-7b.yaml --model "$MODEL" --out "$OUT/data"
stepdpo train --model "$MODEL" --data "$OUT/data/pairs.jsonl" --out "$OUT/train" \
    --lora-r 16 --lora-alpha 32 --lr 5e-6 --epochs 4 --global-batch 64 --rows-per-micro 1 \
    --dtype bf16 --gradient-checkpointing
stepdpo eval --model "$OUT/train/model" --data math500 --backend vllm --out "$OUT/eval-after"
