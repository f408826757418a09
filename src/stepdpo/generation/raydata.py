"""Generation through Ray Data (``--executor ray-data``): ``ray.data.llm``'s vLLM engine processor on
GPUs, the transformers generator in a Ray Data actor pool on CPUs; the same calls as every backend.

One row is one sample. ``ray.data.llm``'s vLLM stage keeps a request's first output only, so a
prompt's n samples are n rows, sample j seeded ``row_seed(seed, prompt, j)``: the stream the local
backends give sample j. Prefix caching inside each vLLM replica computes a shared prompt once for
its n rows (and for the rollouts and continuations that share a problem's prior steps). Prompts
travel as token ids (:func:`~stepdpo.text.encoding.encode_prompt`, so BOS handling matches
training); ray.data.llm's chat-template, tokenize and detokenize stages are off: the stages build
their own prompts, and vLLM's text already ends before a stop string.

Each :meth:`RayDataGenerator.generate` call is one Ray Data execution: the replicas start, load the
model, and stop with it. The executor therefore hands the stages chunks ``ray_data_chunk_scale``
times the local size (:class:`~stepdpo.pipeline.executors.RayDataExecutor`), trading a longer
start-up amortization against the work a killed driver redoes (the resume ledger is unchanged).
"""

from __future__ import annotations

from typing import Any

from stepdpo.generation.base import PROMPT_TOO_LONG, Completion, SamplingConfig, row_seed, too_long

ENGINES = ("vllm", "hf")


def request_rows(encoded: list[list[int]], prompts: list[str], sampling: SamplingConfig) -> list[dict[str, Any]]:
    """One Ray Data row per (prompt, sample): its token ids, its seed (:func:`row_seed`), and vLLM
    sampling parameters with ``n`` 1 and that seed (vLLM takes 31 bits of it)."""
    return [
        {
            "prompt_index": i,
            "sample": j,
            "tokenized_prompt": ids,
            "seed": row_seed(sampling.seed, prompt, j),
            "sampling_params": {
                "n": 1,
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "max_tokens": sampling.max_new_tokens,
                "stop": list(sampling.stop) or None,
                "seed": row_seed(sampling.seed, prompt, j) % (2**31),
            },
        }
        for i, (ids, prompt) in enumerate(zip(encoded, prompts))
        for j in range(sampling.n)
    ]


def finish_reason(
    tokens: list[int], text_of_tokens: str, sampling: SamplingConfig, eos: set[int], room: int | None = None
) -> str:
    """Why a vLLM sample ended (ray.data.llm returns its tokens, not vLLM's reason): the EOS token,
    a stop string in the decoded tokens, else a length limit: ``max_new_tokens`` or the ``room`` the
    model's context left after the prompt (a context cut is "length", as a local run reports it)."""
    if tokens and tokens[-1] in eos:
        return "eos"
    if any(s in text_of_tokens for s in sampling.stop):
        return "stop"
    if len(tokens) >= sampling.max_new_tokens or (room is not None and len(tokens) >= room):
        return "length"
    return "stop"


class _HFReplica:
    """A Ray Data actor's callable on CPUs: the transformers generator, fed the rows' own seeds."""

    def __init__(self, model: str, batch_size: int):
        from stepdpo.generation.hf import HFGenerator

        self.gen = HFGenerator(model, batch_size=batch_size)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        params = batch["sampling_params"]
        first = params[0]
        sampling = SamplingConfig(
            n=1,
            temperature=float(first["temperature"]),
            top_p=float(first["top_p"]),
            max_new_tokens=int(first["max_tokens"]),
            stop=[str(x) for x in (first["stop"] if first["stop"] is not None else [])],
        )
        # a prompt's rows in this batch, generated together (its prompt prefilled once)
        groups: dict[int, list[int]] = {}
        for r, i in enumerate(batch["prompt_index"]):
            groups.setdefault(int(i), []).append(r)
        by_size: dict[int, list[int]] = {}
        for i, rows in groups.items():
            by_size.setdefault(len(rows), []).append(i)
        text, tokens, reason = [""] * len(params), [0] * len(params), [""] * len(params)
        for members in by_size.values():
            encoded = [[int(t) for t in batch["tokenized_prompt"][groups[i][0]]] for i in members]
            seeds = [[int(batch["seed"][r]) for r in groups[i]] for i in members]
            for i, comps in zip(members, self.gen.generate_seeded(encoded, seeds, sampling)):
                for r, c in zip(groups[i], comps):
                    text[r], tokens[r], reason[r] = c.text, c.num_tokens, c.finish_reason
        return {
            "prompt_index": batch["prompt_index"],
            "sample": batch["sample"],
            "generated_text": text,
            "num_generated_tokens": tokens,
            "finish_reason": reason,
        }


class RayDataGenerator:
    """Samples through a Ray Data pipeline over ``replicas`` model replicas (see the module text).

    ``engine``: ``"vllm"`` (ray.data.llm's vLLM engine processor; ``gpus_per_replica`` GPUs each,
    vLLM's tensor parallel size) or ``"hf"`` (the transformers generator, ``cpus_per_replica`` CPUs
    each)."""

    def __init__(
        self,
        model: str,
        *,
        engine: str = "vllm",
        replicas: int = 1,
        cpus_per_replica: float = 1.0,
        gpus_per_replica: float = 1.0,
        batch_size: int = 64,
        address: str | None = None,
        engine_kwargs: dict[str, Any] | None = None,
    ):
        import os
        from types import SimpleNamespace

        try:
            import ray
        except ImportError as e:
            raise ImportError('--executor ray-data needs Ray: pip install "stepdpo[ray]"') from e
        if engine not in ENGINES:
            raise ValueError(f"unknown Ray Data engine {engine!r}; use {' or '.join(ENGINES)}")
        from stepdpo.generation.hf import eos_ids
        from stepdpo.models import load_tokenizer, model_name, resolve_model_path

        if not ray.is_initialized():
            ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, log_to_driver=False)
        self.ray, self.engine, self.replicas = ray, engine, replicas
        self.backend = f"ray-data:{engine}"
        self.cpus, self.gpus, self.batch_size = cpus_per_replica, gpus_per_replica, batch_size
        self.model, self.path = model, resolve_model_path(model)
        self.model_name = model_name(model)
        self.tokenizer = load_tokenizer(model)
        self.engine_kwargs = {"enable_prefix_caching": True, **(engine_kwargs or {})}
        if engine == "vllm" and gpus_per_replica > 1:
            self.engine_kwargs.setdefault("tensor_parallel_size", int(gpus_per_replica))
        from transformers import AutoConfig, GenerationConfig

        config = AutoConfig.from_pretrained(self.path)
        self.context = self.engine_kwargs.get("max_model_len") or getattr(config, "max_position_embeddings", None)
        try:
            gen_config = GenerationConfig.from_pretrained(self.path)
        except OSError:  # a folder without generation_config.json
            gen_config = None
        self.eos = eos_ids(SimpleNamespace(generation_config=gen_config), self.tokenizer)
        self.stats = {"prompt_tokens": 0, "prefill_tokens": 0, "generated_tokens": 0}

    def processor_config(self) -> Any:
        """The ray.data.llm processor config of the vLLM engine (built, not run, on any machine)."""
        from ray.data.llm import vLLMEngineProcessorConfig

        return vLLMEngineProcessorConfig(
            model_source=self.path,
            engine_kwargs=self.engine_kwargs,
            concurrency=(self.replicas, self.replicas),  # n replicas (an int n would autoscale 1..n)
            batch_size=self.batch_size,
            chat_template_stage=False,
            tokenize_stage=False,
            detokenize_stage=False,
        )

    def _run(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # blocks of about one batch each, a prompt's rows together (rows are in prompt order)
        ds = self.ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // self.batch_size)))
        if self.engine == "vllm":
            from ray.data.llm import build_processor

            keep = ("prompt_index", "sample", "generated_text", "generated_tokens", "num_generated_tokens")
            processor = build_processor(
                self.processor_config(), postprocess=lambda row: {k: row[k] for k in keep if k in row}
            )
            out = processor(ds)
        else:
            out = ds.map_batches(
                _HFReplica,
                fn_constructor_kwargs={"model": self.model, "batch_size": self.batch_size},
                batch_size=self.batch_size,
                batch_format="numpy",
                compute=self.ray.data.ActorPoolStrategy(size=self.replicas),
                num_cpus=self.cpus,
            )
        return out.take_all()

    def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[Completion]]:
        """``sampling.n`` completions per prompt, in prompt order (see the module text)."""
        from stepdpo.text.encoding import encode_prompt

        unique = list(dict.fromkeys(prompts))
        encoded = [encode_prompt(self.tokenizer, p) for p in unique]
        over = {i for i, ids in enumerate(encoded) if self.context and len(ids) >= self.context}
        if over:
            too_long(len(over), max(len(encoded[i]) for i in over), self.context)
        fits = [i for i in range(len(unique)) if i not in over]
        rows = request_rows([encoded[i] for i in fits], [unique[i] for i in fits], sampling)
        got: dict[tuple[int, int], Completion] = {}
        for row in self._run(rows) if rows else []:
            key = (int(row["prompt_index"]), int(row["sample"]))
            if key in got:
                raise RuntimeError(f"Ray Data returned sample {key} twice")
            got[key] = self._completion(row, sampling, len(encoded[fits[key[0]]]))
        missing = len(rows) - len(got)
        if missing:
            raise RuntimeError(f"Ray Data returned {len(got)} of {len(rows)} samples ({missing} lost)")
        results = {unique[i]: [Completion("", 0, PROMPT_TOO_LONG)] * sampling.n for i in over}
        for k, i in enumerate(fits):
            results[unique[i]] = [got[(k, j)] for j in range(sampling.n)]
            self.stats["prefill_tokens"] += len(encoded[i])
            self.stats["prompt_tokens"] += len(encoded[i]) * sampling.n
        self.stats["generated_tokens"] += sum(c.num_tokens for c in got.values())
        return [list(results[p]) for p in prompts]

    def _completion(self, row: dict[str, Any], sampling: SamplingConfig, prompt_tokens: int) -> Completion:
        if "finish_reason" in row:  # the transformers replica says why it stopped
            return Completion(str(row["generated_text"]), int(row["num_generated_tokens"]), str(row["finish_reason"]))
        tokens = [int(t) for t in row.get("generated_tokens", [])]
        decoded = self.tokenizer.decode(tokens, skip_special_tokens=False) if sampling.stop else ""
        room = self.context - prompt_tokens if self.context else None
        reason = finish_reason(tokens, decoded, sampling, self.eos, room)
        return Completion(str(row["generated_text"]), int(row["num_generated_tokens"]), reason)
