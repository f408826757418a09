#!/usr/bin/env bash
# Step-DPO with the paper's settings on eight GPUs (DeepSpeed ZeRO-3): AdamW, lr 5e-7, cosine,
# warmup 0.1, global batch 128, beta 0.4, 8 epochs, bf16 (configs/qwen2-7b-step-dpo.yaml).
#   pip install torch && pip install -e ".[vllm,judge,deepspeed]"
# For GPT-4o localization as in the paper: set locate.judge: llm in the pipeline file and export
# OPENAI_API_KEY.
set -euo pipefail
stepdpo pipeline --config configs/pipeline-qwen2-7b.yaml
accelerate launch --config_file configs/accelerate/zero3.yaml -m stepdpo.cli train \
    --config configs/qwen2-7b-step-dpo.yaml
stepdpo eval --model runs/qwen2-7b-step-dpo/model --data math500 --backend vllm
stepdpo eval --model runs/qwen2-7b-step-dpo/model --data gsm8k --backend vllm
