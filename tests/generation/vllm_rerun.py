"""Collect again in a fresh vLLM engine (run by tests/generation/test_vllm.py in vLLM's own
environment): through ``run_collect`` as the command does, and with one problem per chunk.

    python vllm_rerun.py OUT LIMIT K MAX_NEW_TOKENS
"""

import sys
from pathlib import Path


def main() -> None:
    from stepdpo.generation import load_generator
    from stepdpo.pipeline.run import run_collect
    from stepdpo.pipeline.runner import run_stage
    from stepdpo.problems import load_problems
    from stepdpo.stages.collect import CollectConfig, collect_chunk, collect_settings

    out, limit, k, max_new = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    gen = load_generator("smollm2-135m-instruct", backend="vllm", enforce_eager=True)
    problems = load_problems("synthetic-short", split="train", limit=limit)
    cfg = CollectConfig(k=k, max_new_tokens=max_new, keep_correct=True)
    run_collect(gen, problems, out / "rerun.jsonl", cfg)
    one = out / "one_per_chunk.jsonl"
    run_stage(
        "collect",
        problems,
        lambda ps: collect_chunk(gen, ps, cfg),
        one,
        settings=collect_settings(gen, cfg),
        chunk_size=1,
    )


if __name__ == "__main__":  # vLLM's engine starts its processes by spawning, which re-imports this file
    main()
