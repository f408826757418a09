#!/usr/bin/env bash
# One shard of the data pipeline (collect, locate, rectify), as one task of a Slurm job array runs it:
# shard SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT. Shards are disjoint by content hash; each writes
# its own files (errors.shard-I-of-N.jsonl, ...) and resumes from its own ledger when requeued.
set -euo pipefail
CONFIG=${CONFIG:?set CONFIG to a pipeline YAML file}
OUT=${OUT:-runs/data}
: "${SLURM_ARRAY_TASK_ID:?run under sbatch --array, or set SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT}"
stepdpo pipeline --config "$CONFIG" --out "$OUT" --to rectify \
    --shard "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT:?}" "$@"
