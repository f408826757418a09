"""The vLLM generation backend (``pip install 'stepdpo[vllm]'``), for sampling on GPUs.

vLLM shares the prompt's KV cache across the n samples of a request and, with prefix caching,
across requests that share a prefix (the problem and prior steps of rectification).
"""

from __future__ import annotations

from typing import Any

from stepdpo.generation.base import PROMPT_TOO_LONG, Completion, SamplingConfig, row_seed, too_long
from stepdpo.models import model_name, resolve_model_path


class VLLMGenerator:
    """Generation with a vLLM engine; the same calls as :class:`~stepdpo.generation.hf.HFGenerator`."""

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.85,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        seed: int = 0,
        **_: Any,
    ):
        try:
            from vllm import LLM
        except ImportError as e:
            raise ImportError("the vLLM backend needs vllm: pip install 'stepdpo[vllm]'") from e
        self.model_name = model_name(model)
        self.llm = LLM(
            model=resolve_model_path(model),
            dtype=dtype if dtype != "fp32" else "float32",
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            max_model_len=max_model_len,
            enable_prefix_caching=True,
            seed=seed,
        )
        self.tokenizer = self.llm.get_tokenizer()
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
