"""The ``stepdpo`` command line: one thin command per stage of the paper's pipeline."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from stepdpo.recordio import DataError

# options that the sampling stages share
Shard = Annotated[str | None, typer.Option(help="i/n: run shard i of n (merge the outputs with 'stepdpo merge').")]
Backend = Annotated[str, typer.Option(help="auto, hf or vllm.")]
BatchSize = Annotated[int, typer.Option(help="Sequences decoded together (hf backend).")]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Step-DPO: step-wise preference data and training for math reasoning (Lai et al., 2024).",
)
console = Console(stderr=True)


def _say(message: str) -> None:
    """A plain line on stderr: no wrapping (paths stay whole) and no markup (data may hold brackets)."""
    console.print(message, soft_wrap=True, markup=False, highlight=False)


def _fail(message: str) -> None:
    _say(f"error: {message}")
    raise typer.Exit(2)


def _csv(text: str, cast=str, option: str = "") -> list:
    """A comma-separated option value as a list, each item passed through ``cast``."""
    try:
        return [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--{option}: {text!r} is not a comma-separated list of {cast.__name__}") from None


def _run(fn, *args, **kwargs):
    """Run a command body; data problems become one clear line, not a traceback."""
    try:
        return fn(*args, **kwargs)
    except (DataError, FileNotFoundError, ValueError, ImportError) as e:
        _fail(str(e))


@app.command()
def validate(
    files: list[Path] = typer.Argument(..., help="Data files (JSONL, JSON or Parquet) to check."),
    kind: str | None = typer.Option(
        None, help="problem, solution, located_error or step_pair (default: guess per row)."
    ),
    show: int = typer.Option(20, help="Problems to list per file."),
) -> None:
    """Report every problem in data files: malformed lines, missing fields, empty steps, chosen == rejected."""
    from stepdpo.recordio import validate_file

    bad = 0
    for f in files:
        report = validate_file(f, kind)
        _say(report.summary())
        for problem in report.problems[:show]:
            _say(f"  {problem}")
        if len(report.problems) > show:
            _say(f"  ... and {len(report.problems) - show} more")
        bad += sum(report.skipped.values())
    raise typer.Exit(1 if bad else 0)


@app.command()
def inspect(
    file: Path = typer.Argument(..., help="Pairs (this project's or the released Math-Step-DPO-10K layout)."),
    model: str = typer.Option("default", help="The model whose tokenizer and template training uses."),
    limit: int = typer.Option(3, help="Pairs to show."),
    fmt: str = typer.Option("step", "--format", help="step (s_win / s_lose) or dpo (whole continuations)."),
    prompt_format: str = typer.Option("auto", help="auto, base, chat, alpaca, deepseek-math or qwen2-boxed."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per pair: prompt, chosen, rejected."),
) -> None:
    """Show pairs exactly as training tokenizes them: prompt, chosen and rejected decoded from the ids."""
    from stepdpo.models import load_tokenizer
    from stepdpo.recordio import read_records
    from stepdpo.training.inspect import decoded_pairs, render

    def body():
        if limit < 1:
            _fail("--limit must be at least 1")
        pairs, _ = read_records(file, "step_pair")
        items = decoded_pairs(load_tokenizer(model), pairs[:limit], pair_format=fmt, prompt_format=prompt_format)
        for i, item in enumerate(items, 1):
            if as_json:
                sys.stdout.write(
                    json.dumps({k: item[k] for k in ("prompt", "chosen", "rejected")}, ensure_ascii=False) + "\n"
                )
            else:
                sys.stdout.write(render(item, i) + "\n")

    _run(body)


@app.command()
def sft(
    out: Path = typer.Option(..., help="Output model folder."),
    model: str = typer.Option(
        "default", help="Model to fine-tune: a folder, a hub id, or 'tiny' for a fresh tiny Qwen2."
    ),
    data: str = typer.Option(
        "synthetic", help="Problems with reference solutions: synthetic, synthetic-long, gsm8k, math, or a file."
    ),
    limit: int | None = typer.Option(
        None, help="Number of training problems (default 6000; 8000 for tiny on synthetic-long)."
    ),
    max_steps: int = typer.Option(0, help="Optimizer steps (0: use --epochs)."),
    epochs: float = typer.Option(3.0),
    batch_size: int = typer.Option(16),
    lr: float = typer.Option(1e-5),
    seed: int = typer.Option(0),
    prompt_format: str = typer.Option("auto", help="auto, base or chat."),
    slip_rate: float | None = typer.Option(
        None,
        help="tiny on synthetic-long only: the fraction of reference solutions that misstate one step (default 0.3).",
    ),
) -> None:
    """Supervised fine-tuning on step-by-step reference solutions ('tiny' + synthetic rebuilds the default model,
    'tiny' + synthetic-long the long-chain one)."""
    _run(_sft, out, model, data, limit, max_steps, epochs, batch_size, lr, seed, prompt_format, slip_rate)


def _sft(out, model, data, limit, max_steps, epochs, batch_size, lr, seed, prompt_format, slip_rate) -> None:
    from stepdpo.default_model.build import build_default_model, build_long_model

    if slip_rate is not None and not (model == "tiny" and data == "synthetic-long"):
        _fail("--slip-rate applies to the long-chain model only (--model tiny --data synthetic-long)")
    if model == "tiny" and data == "synthetic":
        path = build_default_model(
            out,
            seed=seed,
            n_problems=limit or 6000,
            schedule_steps=max_steps or 1500,
            stop_after=0 if max_steps else 750,
        )
        _say(f"default model written to {path}")
        return
    if model == "tiny" and data == "synthetic-long":
        path = build_long_model(
            out,
            seed=seed,
            n_problems=limit or 8000,
            schedule_steps=max_steps or 1400,
            slip_rate=0.3 if slip_rate is None else slip_rate,
        )
        _say(f"long-chain default model written to {path}")
        return
    import torch

    from stepdpo.models import load_model, load_tokenizer
    from stepdpo.problems import load_problems
    from stepdpo.text.prompts import build_prompt
    from stepdpo.training.sft import SFTConfig, sft_train

    problems = [p for p in load_problems(data, split="train", limit=limit or 6000) if p.solution]
    if not problems:
        _fail(f"{data}: no problems with reference solutions to fine-tune on")
    tok = load_tokenizer(model)
    lm = load_model(model, dtype="fp32" if not torch.cuda.is_available() else "auto")
    pairs = [(build_prompt(p.problem, tokenizer=tok, fmt=prompt_format), p.solution) for p in problems]
    cfg = SFTConfig(max_steps=max_steps, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    log = sft_train(lm, tok, pairs, cfg)
    out.mkdir(parents=True, exist_ok=True)
    lm.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "sft_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    _say(f"model written to {out}")


@app.command("eval")
def eval_cmd(
    model: str = typer.Option("default", help="Model folder or hub id ('default': the embedded tiny model)."),
    data: str = typer.Option(
        "synthetic", help="synthetic, synthetic-long, gsm8k, math500, math, hub:ORG/NAME, or a file."
    ),
    limit: int | None = typer.Option(None, help="Evaluate the first N problems (synthetic: 500 by default)."),
    n: int = typer.Option(1, help="Samples per problem."),
    temperature: float = typer.Option(0.0, help="0 for greedy decoding."),
    top_p: float = typer.Option(1.0),
    max_new_tokens: int = typer.Option(512),
    prompt_format: str = typer.Option("auto", help="auto, base or chat."),
    backend: Backend = "auto",
    batch_size: BatchSize = 64,
    seed: int = typer.Option(0),
    out: Path | None = typer.Option(
        None, help="Folder for summary.json and results.jsonl (default runs/eval-MODEL-DATA)."
    ),
) -> None:
    """Accuracy under the step-wise CoT prompt; writes per-problem results and a summary."""
    _run(
        _eval, model, data, limit, n, temperature, top_p, max_new_tokens, prompt_format, backend, batch_size, seed, out
    )


def _eval(model, data, limit, n, temperature, top_p, max_new_tokens, prompt_format, backend, batch_size, seed, out):
    from stepdpo.generation import load_generator
    from stepdpo.models import model_name
    from stepdpo.problems import load_problems
    from stepdpo.stages.evaluate import EvalConfig, evaluate, save_result

    problems = load_problems(data, split="test", limit=limit)
    kwargs = {"batch_size": batch_size} if backend != "vllm" else {}
    gen = load_generator(model, backend=backend, **kwargs)
    cfg = EvalConfig(
        n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, prompt_format=prompt_format, seed=seed
    )
    result = evaluate(gen, problems, cfg, data_name=data)
    out = out or Path("runs") / f"eval-{model_name(model)}-{Path(data).stem}"
    summary_path, rows_path = save_result(result, out)
    s = result.summary
    table = Table(title=f"stepdpo eval: {s['model']} on {data}")
    for col in ("problems", "accuracy", "pass@n", "steps all right", "format", "tokens/s", "time"):
        table.add_column(col)
    table.add_row(
        str(s["n_problems"]),
        f"{100 * s['accuracy']:.1f} %",
        f"{100 * s['pass_at_n']:.1f} %" if "pass_at_n" in s else "-",
        f"{100 * s['steps_all_correct']:.1f} %" if "steps_all_correct" in s else "-",
        s["prompt_format"],
        str(s["tokens_per_s"]),
        f"{s['wall_s']:.0f} s",
    )
    Console().print(table)
    _say(f"summary: {summary_path}\nper-problem results: {rows_path}")


def _generator(model: str, backend: str, batch_size: int):
    from stepdpo.generation import load_generator

    return load_generator(model, backend=backend, **({"batch_size": batch_size} if backend != "vllm" else {}))


def _report(summary) -> None:
    _say(summary.text())


@app.command()
def collect(
    out: Path = typer.Option(Path("runs/data/errors.jsonl"), help="Wrong solutions (D1), JSONL."),
    model: str = typer.Option("default", help="Reference model: folder, hub id, 'default' or 'default-long'."),
    data: str = typer.Option(
        "synthetic", help="synthetic, synthetic-long, gsm8k, math500, math, hub:ORG/NAME, or a file."
    ),
    split: str = typer.Option("train"),
    limit: int | None = typer.Option(500, help="Number of problems."),
    k: int = typer.Option(8, help="Solutions sampled per problem."),
    temperature: float = typer.Option(0.8),
    top_p: float = typer.Option(0.95),
    max_new_tokens: int = typer.Option(512),
    prompt_format: str = typer.Option("auto", help="auto, base or chat."),
    keep_correct: bool = typer.Option(False, help="Also write the right solutions."),
    seed: int = typer.Option(0),
    shard: Shard = None,
    backend: Backend = "auto",
    batch_size: BatchSize = 64,
) -> None:
    """Error collection: sample k step-wise solutions per problem, keep the wrong ones (Sec. 3.2)."""
    from stepdpo.pipeline.run import run_collect
    from stepdpo.pipeline.runner import parse_shard
    from stepdpo.problems import load_problems
    from stepdpo.stages.collect import CollectConfig

    def body():
        cfg = CollectConfig(
            k=k,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            prompt_format=prompt_format,
            seed=seed,
            keep_correct=keep_correct,
        )
        problems = load_problems(data, split=split, limit=limit)
        _report(run_collect(_generator(model, backend, batch_size), problems, out, cfg, parse_shard(shard)))

    _run(body)


@app.command()
def locate(
    inp: Path = typer.Option(Path("runs/data/errors.jsonl"), "--in", help="Wrong solutions from 'collect'."),
    out: Path = typer.Option(Path("runs/data/located.jsonl"), help="Located errors (D2), JSONL."),
    judge: str = typer.Option("rollout", help="rollout (no external judge), verifier (exact checker) or llm."),
    model: str = typer.Option("default", help="Model for rollouts (rollout judge)."),
    m: int = typer.Option(8, help="Rollouts per prefix check."),
    search: str = typer.Option("binary", help="binary, linear or full (rollout judge)."),
    early_stop: bool = typer.Option(True, help="Sample m/2 first, the rest only if none succeeded."),
    temperature: float = typer.Option(
        1.0,
        help="Rollout temperature (rollout judge); 0.5 for a policy whose errors "
        "are random slips, such as default-long.",
    ),
    max_new_tokens: int = typer.Option(512),
    llm_model: str = typer.Option("gpt-4o", help="Judge model (llm judge)."),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible endpoint (llm judge)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Environment variable with the API key (llm judge)."),
    concurrency: int = typer.Option(8, help="Parallel requests (llm judge)."),
    seed: int = typer.Option(0),
    shard: Shard = None,
    backend: Backend = "auto",
    batch_size: BatchSize = 64,
) -> None:
    """Step localization: the first wrong step of each wrong solution (Sec. 3.2)."""
    from stepdpo.pipeline.run import run_locate
    from stepdpo.pipeline.runner import parse_shard
    from stepdpo.stages.locate import LocateConfig, judge_from_config

    def body():
        cfg = LocateConfig(
            judge=judge,
            m=m,
            search=search,
            early_stop=early_stop,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            llm_model=llm_model,
            base_url=base_url,
            api_key_env=api_key_env,
            concurrency=concurrency,
            seed=seed,
        )
        gen = _generator(model, backend, batch_size) if judge == "rollout" else None
        _report(run_locate(judge_from_config(cfg, gen, out), inp, out, parse_shard(shard)))

    _run(body)


@app.command()
def rectify(
    inp: Path = typer.Option(Path("runs/data/located.jsonl"), "--in", help="Located errors from 'locate'."),
    out: Path = typer.Option(Path("runs/data/rectified.jsonl"), help="Rectifications, JSONL."),
    model: str = typer.Option("default", help="Reference model (the same that made the errors)."),
    n: int = typer.Option(8, help="Continuations sampled per error."),
    temperature: float = typer.Option(0.8),
    top_p: float = typer.Option(0.95),
    max_new_tokens: int = typer.Option(512),
    prompt_format: str = typer.Option("auto"),
    seed: int = typer.Option(0),
    shard: Shard = None,
    backend: Backend = "auto",
    batch_size: BatchSize = 64,
) -> None:
    """Rectification: the model's own correct next steps after s1..s(k-1) (eq. 3)."""
    from stepdpo.pipeline.run import run_rectify
    from stepdpo.pipeline.runner import parse_shard
    from stepdpo.stages.rectify import RectifyConfig

    def body():
        cfg = RectifyConfig(
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            prompt_format=prompt_format,
            seed=seed,
        )
        _report(run_rectify(_generator(model, backend, batch_size), inp, out, cfg, parse_shard(shard)))

    _run(body)


@app.command()
def build(
    inp: Path = typer.Option(Path("runs/data/rectified.jsonl"), "--in", help="Rectifications from 'rectify'."),
    out: Path = typer.Option(
        Path("runs/data/pairs.jsonl"), help="Pairs in the Step-DPO schema (JSONL, JSON or Parquet)."
    ),
    fmt: str = typer.Option("step", "--format", help="step (Step-DPO pairs) or dpo (whole-solution pairs)."),
    max_per_error: int = typer.Option(1),
    max_per_problem: int = typer.Option(4),
    recheck: bool = typer.Option(False, help="Re-check chosen steps with the task's exact checker."),
) -> None:
    """Build preference pairs (D) in the Step-DPO schema, or whole-solution pairs for vanilla DPO."""
    from stepdpo.pipeline.run import run_build
    from stepdpo.stages.pairs import BuildConfig

    _run(
        lambda: _report(
            run_build(
                inp,
                out,
                BuildConfig(fmt=fmt, max_per_error=max_per_error, max_per_problem=max_per_problem, recheck=recheck),
            )
        )
    )


@app.command()
def merge(
    files: list[Path] = typer.Argument(..., help="Shard outputs of one stage."),
    out: Path = typer.Option(..., help="Merged file."),
) -> None:
    """Merge the shard outputs of a stage into one file (each record once)."""
    from stepdpo.pipeline.runner import merge_shards

    _run(lambda: _say(f"{merge_shards(files, out)} records written to {out}"))


@app.command()
def pipeline(
    config: Path | None = typer.Option(None, help="YAML file of options (see configs/pipeline.yaml)."),
    start: str = typer.Option("collect", "--from", help="First stage: collect, locate, rectify or build."),
    stop: str = typer.Option("build", "--to", help="Last stage."),
    out: str | None = typer.Option(None, help="Output folder (overrides the config)."),
    shard: Shard = None,
) -> None:
    """Run the whole data pipeline (collect, locate, rectify, build) from one config file."""
    from stepdpo.pipeline.run import PipelineConfig, run_pipeline
    from stepdpo.pipeline.runner import parse_shard

    def body():
        cfg = PipelineConfig.from_yaml(config) if config else PipelineConfig()
        if out:
            cfg.out = out
        run_pipeline(cfg, start, stop, parse_shard(shard))

    _run(body)


@app.command()
def train(
    data: str | None = typer.Option(None, help="Pairs in the Step-DPO schema (from 'stepdpo build')."),
    out: str | None = typer.Option(None, help="Output folder (default runs/train)."),
    config: Path | None = typer.Option(None, help="YAML file of TrainConfig options (see configs/)."),
    model: str | None = typer.Option(None, help="Model to train (also the reference)."),
    fmt: str | None = typer.Option(None, "--format", help="step (no EOS after a step) or dpo (whole solutions)."),
    add_eos: bool | None = typer.Option(None, "--add-eos/--no-eos", help="Override the format's EOS rule."),
    val_data: str | None = typer.Option(None, help="Held-out pairs for the validation curves."),
    val_fraction: float | None = typer.Option(None, help="Share of --data held out when --val-data is not given."),
    loss: str | None = typer.Option(None, help="sigmoid, robust, hinge or ipo."),
    beta: float | None = typer.Option(None),
    label_smoothing: float | None = typer.Option(None),
    sft_weight: float | None = typer.Option(None, help="Weight of an NLL term on the chosen completion."),
    lr: float | None = typer.Option(None),
    epochs: float | None = typer.Option(None),
    global_batch: int | None = typer.Option(None, help="Pairs per optimizer step, all processes together."),
    max_seq_len: int | None = typer.Option(None, help="Tokens per packed row."),
    rows_per_micro: int | None = typer.Option(None, help="Packed rows per forward pass."),
    prefix_sharing: bool | None = typer.Option(None, "--prefix-sharing/--no-prefix-sharing"),
    lora_r: int | None = typer.Option(None, help="LoRA rank (0: full fine-tuning)."),
    dtype: str | None = typer.Option(None, help="auto, bf16 or fp32."),
    gradient_checkpointing: bool | None = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing"),
    eval_every: int | None = typer.Option(None),
    save_every: int | None = typer.Option(None),
    max_steps: int | None = typer.Option(None),
    resume: bool = typer.Option(False, help="Continue from the last checkpoint in --out."),
    seed: int | None = typer.Option(None),
) -> None:
    """Train with Step-DPO (eq. 2) on step pairs, or vanilla DPO on whole-solution pairs (--format dpo)."""
    from stepdpo.training.trainer import TrainConfig
    from stepdpo.training.trainer import train as run_train

    given = {
        k: v
        for k, v in dict(
            data=data,
            out=out,
            model=model,
            fmt=fmt,
            add_eos=add_eos,
            val_data=val_data,
            val_fraction=val_fraction,
            loss=loss,
            beta=beta,
            label_smoothing=label_smoothing,
            sft_weight=sft_weight,
            lr=lr,
            epochs=epochs,
            global_batch=global_batch,
            max_seq_len=max_seq_len,
            rows_per_micro=rows_per_micro,
            prefix_sharing=prefix_sharing,
            lora_r=lora_r,
            dtype=dtype,
            gradient_checkpointing=gradient_checkpointing,
            eval_every=eval_every,
            save_every=save_every,
            max_steps=max_steps,
            seed=seed,
        ).items()
        if v is not None
    }
    if resume:
        given["resume"] = True

    def body():
        cfg = TrainConfig.from_yaml(config, **given) if config else TrainConfig(**given)
        if not cfg.data:
            _fail("no training data: give --data or 'data:' in --config")
        result = run_train(cfg)
        _say(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=1))

    _run(body)


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Output folder: results.json, report.md, plots, data, logs."),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds."),
    train_problems: int = typer.Option(600, help="Problems to collect errors on."),
    eval_problems: int = typer.Option(500, help="Held-out problems per seed."),
    judge: str = typer.Option("verifier", help="Localization: verifier (exact checker) or rollout (no judge)."),
    lr: float = typer.Option(2e-5),
    beta: float = typer.Option(0.4),
    epochs: float = typer.Option(3.0),
    quick: bool = typer.Option(False, help="A small run (one seed, few problems) to check the wiring."),
) -> None:
    """The whole method on the embedded default: SFT vs DPO vs Step-DPO (Tables 3, 4; Fig. 2)."""
    from stepdpo.experiments.common import DemoConfig
    from stepdpo.experiments.demo import run_demo
    from stepdpo.experiments.report import report

    def body():
        cfg = DemoConfig(
            out=str(out),
            seeds=_csv(seeds, int, "seeds"),
            train_problems=train_problems,
            eval_problems=eval_problems,
            judge=judge,
            lr=lr,
            beta=beta,
            epochs=epochs,
        )
        if quick:
            cfg.seeds, cfg.train_problems, cfg.eval_problems, cfg.epochs, cfg.n = cfg.seeds[:1], 60, 60, 1.0, 4
        res = run_demo(cfg)
        Console().print(report(res).split("## What the numbers say")[0], markup=False, highlight=False, soft_wrap=True)
        _say(f"results: {out / 'results.json'}; report: {out / 'report.md'}; total {res['wall_s']:.0f} s")

    _run(body)


@app.command()
def ablate(
    demo: Path = typer.Option(Path("runs/demo"), help="A finished `stepdpo demo` folder; results go there too."),
    fractions: str = typer.Option("0.25,0.5", help="Shares of the errors to train on (the demo: all)."),
    betas: str = typer.Option("0.1,1.0", help="Values of beta (the demo's value is the baseline)."),
    epochs: str = typer.Option("1,6", help="Numbers of epochs (the demo's value is the baseline)."),
    errors: str = typer.Option("last_step,mid_chain", help="Error subsets: last_step, mid_chain."),
    seeds: str | None = typer.Option(None, help="Comma-separated seeds (default: the demo's)."),
    keep_models: bool = typer.Option(False, help="Keep every run's model folder."),
) -> None:
    """Why Step-DPO and DPO differ: retrain both with one factor changed at a time (pairs, beta,
    epochs, kind of error); adds a section to the demo's report. Resumable."""
    from stepdpo.experiments.ablate import AblateConfig, run_ablations

    def body():
        cfg = AblateConfig(
            demo=str(demo),
            fractions=_csv(fractions, float, "fractions"),
            betas=_csv(betas, float, "betas"),
            epochs=_csv(epochs, float, "epochs"),
            errors=_csv(errors),
            seeds=_csv(seeds, int, "seeds") if seeds else None,
            keep_models=keep_models,
        )
        res = run_ablations(cfg, quiet=False)
        _say(
            f"ablations: {demo / 'ablations.json'}; report: {demo / 'report.md'}; {res['runs']} runs, "
            f"{res['run_seconds']:.0f} s of training and evaluation"
        )

    _run(body)


@app.command()
def iterate(
    out: Path = typer.Option(Path("runs/iterate"), help="Output folder."),
    model: str = typer.Option("default", help="Starting model."),
    rounds: int = typer.Option(3, help="Rounds of collect, locate, rectify, train."),
    train_problems: int = typer.Option(600, help="Fresh training problems per round."),
    eval_problems: int = typer.Option(500, help="Held-out problems, the same every round."),
    judge: str = typer.Option("verifier", help="verifier (exact checker) or rollout (no judge)."),
    lr: float = typer.Option(2e-5),
    epochs: float = typer.Option(3.0),
) -> None:
    """Iterative Step-DPO: each round trains on the previous round's model's own errors."""
    from stepdpo.experiments.iterate import IterateConfig, run_iterate

    def body():
        res = run_iterate(
            IterateConfig(
                out=str(out),
                model=model,
                rounds=rounds,
                train_problems=train_problems,
                eval_problems=eval_problems,
                judge=judge,
                lr=lr,
                epochs=epochs,
            )
        )
        _say((out / "iterate.md").read_text() + f"total {res['wall_s']:.0f} s")

    _run(body)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
