#!/usr/bin/env bash
# After every shard: one file per stage, then the pairs (the build stage reads the merged rectifications).
set -euo pipefail
OUT=${OUT:-runs/data}
N=${SHARDS:?set SHARDS to the array size}
for stage in errors located rectified; do
    shards=()
    for ((i = 0; i < N; i++)); do shards+=("$OUT/$stage.shard-$i-of-$N.jsonl"); done
    stepdpo merge "${shards[@]}" --out "$OUT/$stage.jsonl"
done
stepdpo build --in "$OUT/rectified.jsonl" --out "$OUT/pairs.jsonl" "$@"
stepdpo build --in "$OUT/rectified.jsonl" --out "$OUT/pairs_dpo.jsonl" --pair-format dpo "$@"
