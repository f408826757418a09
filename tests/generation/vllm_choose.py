"""Choose a backend with both installed (run by tests/generation/test_vllm.py in vLLM's own
environment): each probed in a child process on SmolLM2, greedy, on the first problems of the
short task; prints the choice and the probes' texts as one JSON object.

    python vllm_choose.py PROMPTS SAMPLES STARTS
"""

import json
import sys


def main() -> None:
    from stepdpo.generation import choose
    from stepdpo.generation.choose import Workload, decide, probe_in_child
    from stepdpo.models import load_tokenizer
    from stepdpo.problems import load_problems
    from stepdpo.text.prompts import generation_prompt

    n_prompts, samples, starts = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    model = "smollm2-135m-instruct"
    tok = load_tokenizer(model)
    prompts = [
        generation_prompt(p.problem, tokenizer=tok)[0] for p in load_problems("synthetic-short", limit=n_prompts)
    ]
    sampling = {"n": 1, "temperature": 0.0, "max_new_tokens": 64}
    kwargs = {"vllm": {"enforce_eager": True}}
    probes = {}

    def keep(backend, *args):  # the probes choose_backend makes, kept for their texts
        probes[backend] = probe_in_child(backend, *args)
        return probes[backend]

    choose.probe_in_child = keep
    chosen = choose.choose_backend("auto", model, prompts, sampling, Workload(samples, starts), kwargs)
    print(json.dumps({"chosen": chosen, "decided": decide(probes, Workload(samples, starts)), "probes": probes}))


if __name__ == "__main__":
    main()
