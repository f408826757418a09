import pytest

from stepdpo.generation import SamplingConfig, load_generator
from stepdpo.generation.base import STEP_STOP
from stepdpo.generation.hf import HFGenerator
from stepdpo.tasks.arithmetic import generate_problems
from stepdpo.text.prompts import generation_prompt


@pytest.fixture(scope="module")
def gen(model, tokenizer):
    return HFGenerator(model, tokenizer, batch_size=8)


@pytest.fixture(scope="module")
def prompts():
    return [generation_prompt(p.problem)[0] for p in generate_problems(6, seed=77)]


def test_greedy_matches_transformers_generate(gen, model, tokenizer, prompts):
    ids = tokenizer(prompts[0], return_tensors="pt")
    ref = model.generate(**ids, max_new_tokens=24, do_sample=False, eos_token_id=None)
    ours = gen.generate([prompts[0]], SamplingConfig(max_new_tokens=24))[0][0]
    assert ours.text == tokenizer.decode(ref[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


def test_batched_greedy_equals_one_by_one(gen, prompts):
    cfg = SamplingConfig(max_new_tokens=30)
    batched = [c[0].text for c in gen.generate(prompts, cfg)]
    single = [gen.generate([p], cfg)[0][0].text for p in prompts]
    assert batched == single


def test_sampling_is_seeded_and_n_per_prompt(gen, prompts):
    cfg = SamplingConfig(n=4, temperature=1.0, top_p=0.95, max_new_tokens=20, seed=5)
    a, b = gen.generate(prompts[:3], cfg), gen.generate(prompts[:3], cfg)
    assert [len(x) for x in a] == [4, 4, 4]
    assert [[c.text for c in x] for x in a] == [[c.text for c in x] for x in b]
    c = gen.generate(prompts[:3], SamplingConfig(n=4, temperature=1.0, max_new_tokens=20, seed=6))
    assert [[t.text for t in x] for x in a] != [[t.text for t in x] for x in c]


def test_prompt_is_encoded_once_for_n_samples(model, tokenizer, prompts):
    shared = HFGenerator(model, tokenizer, batch_size=16)
    copied = HFGenerator(model, tokenizer, batch_size=16, share_prompt=False)
    cfg = SamplingConfig(n=4, temperature=0.0, max_new_tokens=12)
    a, b = shared.generate(prompts[:2], cfg), copied.generate(prompts[:2], cfg)
    assert [[c.text for c in x] for x in a] == [[c.text for c in x] for x in b]
    assert shared.stats["prefill_tokens"] * 4 == copied.stats["prefill_tokens"]


def test_stop_at_end_of_step(gen, prompts):
    out = gen.generate(prompts[:4], SamplingConfig(max_new_tokens=80, stop=[STEP_STOP]))
    for (c,) in out:
        assert "Step" not in c.text and c.finish_reason in ("stop", "eos", "length")
    assert any(c.finish_reason == "stop" for (c,) in out)


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown generation backend"):
        load_generator("x", backend="nope")


def test_samples_do_not_depend_on_batching(model, tokenizer, prompts):
    cfg = SamplingConfig(n=3, temperature=1.0, max_new_tokens=25, seed=11)
    together = HFGenerator(model, tokenizer, batch_size=64).generate(prompts, cfg)
    alone = [HFGenerator(model, tokenizer, batch_size=64).generate([p], cfg)[0] for p in reversed(prompts)][::-1]
    assert [[c.text for c in x] for x in together] == [[c.text for c in x] for x in alone]


def test_repeated_prompts_are_generated_once(model, tokenizer, prompts):
    gen = HFGenerator(model, tokenizer, batch_size=64)
    cfg = SamplingConfig(n=2, temperature=1.0, max_new_tokens=15, seed=4)
    out = gen.generate([prompts[0], prompts[1], prompts[0]], cfg)
    assert [c.text for c in out[0]] == [c.text for c in out[2]]
    single = HFGenerator(model, tokenizer, batch_size=64)
    single.generate([prompts[0], prompts[1]], cfg)
    assert gen.stats["prefill_tokens"] == single.stats["prefill_tokens"]


def test_every_eos_id_of_the_generation_config_ends_a_completion(model, tokenizer, prompts):
    """Llama-3 ends a turn with <|eot_id|>, a second id in generation_config.eos_token_id."""
    import copy

    m = copy.deepcopy(model)
    plain = HFGenerator(m, tokenizer).generate([prompts[0]], SamplingConfig(max_new_tokens=30))[0][0]
    ids = tokenizer(plain.text, add_special_tokens=False)["input_ids"]
    turn_end = ids[5]  # a token greedy decoding writes sixth: make it a second end-of-turn id
    m.generation_config.eos_token_id = [tokenizer.eos_token_id, turn_end]
    ended = HFGenerator(m, tokenizer).generate([prompts[0]], SamplingConfig(max_new_tokens=30))[0][0]
    assert ended.finish_reason == "eos"
    assert ended.text == tokenizer.decode(ids[: ids.index(turn_end)], skip_special_tokens=True)


def test_prefill_computes_the_last_positions_logits_only(gen, prompts, monkeypatch):
    shapes = []
    real = gen.model.forward

    def spy(*a, **k):
        out = real(*a, **k)
        shapes.append(tuple(out.logits.shape))
        return out

    monkeypatch.setattr(gen.model, "forward", spy)
    gen.generate(prompts[:3], SamplingConfig(max_new_tokens=2))
    assert shapes[0][1] == 1  # (batch, 1, vocab) at prefill, not (batch, prompt length, vocab)


def test_no_deprecation_warning_from_decoding(gen, prompts):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        gen.generate(prompts[:2], SamplingConfig(n=2, temperature=1.0, max_new_tokens=8))


def test_the_sampler_draws_from_the_tempered_nucleus():
    """Inverse-CDF sampling with one generator per row: frequencies follow softmax(logits / T), tokens
    outside the top-p nucleus are never drawn, and a row's draw does not depend on its batch."""
    import torch

    from stepdpo.generation.hf import _sample

    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))[None].repeat(4000, 1)
    gens = [torch.Generator().manual_seed(i) for i in range(4000)]
    drawn = _sample(logits, SamplingConfig(temperature=1.0), gens)
    freq = torch.bincount(drawn, minlength=4).double() / 4000
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64), atol=0.03)
    gens = [torch.Generator().manual_seed(i) for i in range(4000)]
    cut = _sample(logits, SamplingConfig(temperature=1.0, top_p=0.7), gens)
    assert set(cut.tolist()) == {0, 1}  # 0.5 + 0.3 covers 0.7: the tail is cut
    one = _sample(logits[:1], SamplingConfig(temperature=1.0), [torch.Generator().manual_seed(7)])
    batch = _sample(logits[:3], SamplingConfig(temperature=1.0), [torch.Generator().manual_seed(s) for s in (1, 7, 2)])
    assert one[0] == batch[1]


def test_the_in_place_cache_gives_what_transformers_cache_gives(model, tokenizer, prompts):
    """Sampled with rows finishing at different steps (so finished rows leave the cache), the
    cache that grows in place and transformers' own give the same completions."""
    cfg = SamplingConfig(n=4, temperature=1.0, max_new_tokens=40, seed=3, stop=[STEP_STOP])
    ours = HFGenerator(model, tokenizer, batch_size=32).generate(prompts, cfg)
    plain = HFGenerator(model, tokenizer, batch_size=32, in_place_cache=False).generate(prompts, cfg)
    assert [[c.text for c in x] for x in ours] == [[c.text for c in x] for x in plain]
    assert len({c.num_tokens for x in ours for c in x}) > 1  # rows did leave at different steps


def test_the_in_place_layer_holds_what_a_dynamic_layer_holds():
    import torch
    from transformers.cache_utils import DynamicLayer

    from stepdpo.generation.kv import InPlaceLayer

    g = torch.Generator().manual_seed(0)
    k0, v0 = torch.randn(3, 2, 5, 4, generator=g), torch.randn(3, 2, 5, 4, generator=g)
    plain, ours = DynamicLayer(), InPlaceLayer(k0, v0, capacity=6)
    plain.update(k0, v0)
    for step in range(4):  # the third step goes past the planned capacity
        k, v = (
            torch.randn(plain.keys.shape[0], 2, 1, 4, generator=g),
            torch.randn(plain.keys.shape[0], 2, 1, 4, generator=g),
        )
        a, b = plain.update(k, v), ours.update(k, v)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        if step == 1:
            keep = torch.tensor([0, 2])
            plain.batch_select_indices(keep)
            ours.batch_select_indices(keep)
    assert ours.get_seq_length() == plain.get_seq_length() == 9


def test_a_prompt_longer_than_the_context_is_skipped_and_counted(gen, model, tokenizer, prompts, stepdpo_log):
    from stepdpo.generation import PROMPT_TOO_LONG
    from stepdpo.records import Problem
    from stepdpo.stages.collect import CollectConfig, collect_chunk
    from stepdpo.stages.evaluate import EvalConfig, evaluate

    context = model.config.max_position_embeddings
    word = " 12 + 3 = 15."
    long = "Add these. " + word * (context // len(tokenizer(word)["input_ids"]) + 5)
    near = "Add these. " + word * ((context - 40) // len(tokenizer(word)["input_ids"]))
    out = gen.generate([prompts[0], long, near], SamplingConfig(n=2, max_new_tokens=200))
    assert [c.finish_reason for c in out[1]] == [PROMPT_TOO_LONG] * 2 and out[1][0].text == ""
    assert out[0][0].finish_reason != PROMPT_TOO_LONG
    # a prompt that nearly fills the context stops at its end: no position past the model's last
    n_prompt = len(tokenizer(near)["input_ids"])
    assert all(c.finish_reason in ("length", "eos") and n_prompt + c.num_tokens <= context for c in out[2])
    assert any("1 prompt(s) skipped" in m and f"context holds {context}" in m for m in stepdpo_log)
    probs = [Problem(id="a", problem=long, answer="1"), Problem(id="b", problem="What is 2 + 2?", answer="4")]
    (res_a, res_b) = collect_chunk(gen, probs, CollectConfig(k=2, max_new_tokens=20))
    assert res_a.dropped == {PROMPT_TOO_LONG: 2} and not res_a.records and not res_b.dropped
    assert evaluate(gen, probs, EvalConfig(max_new_tokens=20)).summary["prompt_too_long"] == 1


def test_the_generation_benchmark_reads_its_prompts_from_the_project(default_model):
    """benchmarks/generation.py ships its prompts: no data outside the repository, no hub."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "generation.py"
    spec = importlib.util.spec_from_file_location("bench_generation", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.GSM8K.is_relative_to(path.parent)
    prompts = mod.prompts_for(default_model, 8)
    assert len(prompts) == 8 and "Natalia" not in prompts[0] and "Janet" in prompts[0]


def test_a_sample_seeded_alone_equals_that_sample_in_a_batch_of_n(gen, prompts):
    """generate_seeded is what a Ray Data replica runs: sample j of a prompt, handed row_seed(seed,
    prompt, j) alone, is the text generate gives as sample j of n."""
    from stepdpo.generation import row_seed
    from stepdpo.text.encoding import encode_prompt

    cfg = SamplingConfig(n=3, temperature=1.0, max_new_tokens=40, seed=5, stop=[STEP_STOP])
    full = gen.generate(prompts[:2], cfg)
    for i, p in enumerate(prompts[:2]):
        for j in (2, 0):
            alone = gen.generate_seeded([encode_prompt(gen.tokenizer, p)], [[row_seed(5, p, j)]], cfg)[0][0]
            assert alone == full[i][j]
    assert len({c.text for c in full[0]}) > 1  # the three samples are not one stream
    with pytest.raises(ValueError, match="same number of seeds"):
        gen.generate_seeded([[1, 2], [3]], [[1], [2, 3]], cfg)


def test_ray_data_rows_are_one_per_sample_with_its_own_seed():
    """ray.data.llm's vLLM stage keeps one output per request: n samples must be n rows, each
    seeded as the local backends seed sample j, or samples would be lost or repeated."""
    from stepdpo.generation import row_seed
    from stepdpo.generation.raydata import finish_reason, request_rows

    cfg = SamplingConfig(n=3, temperature=0.7, top_p=0.9, max_new_tokens=8, stop=[STEP_STOP], seed=11)
    rows = request_rows([[1, 2], [3]], ["a", "b"], cfg)
    assert [(r["prompt_index"], r["sample"]) for r in rows] == [(i, j) for i in (0, 1) for j in range(3)]
    assert [r["seed"] for r in rows[:3]] == [row_seed(11, "a", j) for j in range(3)]
    assert len({r["seed"] for r in rows}) == 6
    p = rows[4]["sampling_params"]
    assert p == {
        "n": 1,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 8,
        "stop": [STEP_STOP],
        "seed": row_seed(11, "b", 1) % 2**31,
    }
    assert rows[3]["tokenized_prompt"] == [3]
    eos = {0}
    assert finish_reason([5, 0], "x", cfg, eos) == "eos"
    assert finish_reason([5, 6], "x\nStep 2", cfg, eos) == "stop"
    assert finish_reason(list(range(1, 9)), "no marker", cfg, eos) == "length"
    assert finish_reason(list(range(1, 9)), "ends\nStep 3", cfg, eos) == "stop"  # at the limit, on a stop
    # the model's context cut it short of max_new_tokens: "length", as a local run says
    assert finish_reason([5, 6, 7], "no marker", cfg, eos, room=3) == "length"
    assert finish_reason([5, 6, 7], "no marker", cfg, eos, room=4) == "stop"
