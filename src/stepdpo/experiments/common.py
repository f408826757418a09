"""What the experiments (demo, ablate) share: the demo's options, the arms, how a run trains and is
evaluated, and statistics over seeds."""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from stepdpo.experiments.settings import DEMO_DEFAULTS, DEMO_MODELS, DEMO_TASKS
from stepdpo.options import option
from stepdpo.pipeline.run import PipelineConfig
from stepdpo.records import Problem, StepPair
from stepdpo.stages.collect import CollectConfig
from stepdpo.stages.locate import LocateConfig
from stepdpo.stages.pairs import BuildConfig
from stepdpo.stages.rectify import RectifyConfig
from stepdpo.training.trackers import ReportOptions

ARMS = ("sft", "dpo", "dpo_shared_prefix", "step_dpo", "step_dpo_ood", "step_dpo_matched")
"""The demo's arms (Tables 3 and 4): the SFT model, and preference trainings of it on pairs from
the same error-collection problems. ``step_dpo_matched`` is Step-DPO on as many pairs as the DPO
arms that run (Table 3 at equal pairs and optimizer steps); it runs with them."""
TRAINED = ARMS[1:]
MATCHED_TO = ("dpo", "dpo_shared_prefix")
"""The arms ``step_dpo_matched`` is matched to: with any of them in a run, every one of them and
Step-DPO's matched copy train on the same number of pairs (the fewest any of them has)."""
SAME_PICKS = {"step_dpo_matched": "step_dpo"}
"""Arms that take another arm's lr and beta (the same loss on a subset of the same pairs)."""
TUNED = tuple(a for a in TRAINED if a not in SAME_PICKS)
"""The arms ``stepdpo demo --tune`` picks lr and beta for."""
LABELS = {
    "sft": "SFT",
    "dpo": "SFT + DPO (holistic)",
    "dpo_shared_prefix": "SFT + DPO (shared prefix)",
    "step_dpo": "SFT + Step-DPO",
    "step_dpo_ood": "SFT + Step-DPO (OOD s_win)",
    "step_dpo_matched": "SFT + Step-DPO (matched to DPO)",
}
ARM_DATA = {
    "dpo": ("pairs_holistic.jsonl", "dpo"),
    "dpo_shared_prefix": ("pairs_dpo.jsonl", "dpo"),
    "step_dpo": ("pairs.jsonl", "step"),
    "step_dpo_ood": ("pairs_ood.jsonl", "step"),
    "step_dpo_matched": ("pairs_matched.jsonl", "step"),
}
"""Each trained arm's pair file (in a seed's data folder) and the pair format it trains with."""
ABLATED = ("dpo_shared_prefix", "step_dpo")
"""The arms `stepdpo ablate` retrains."""

PICKS_FILE = Path(__file__).with_name("demo_picks.json")
"""Each arm's lr and beta per task, picked by ``stepdpo demo --tune`` (docs/demo.md has the grid)."""


@dataclass
class DemoConfig(ReportOptions):
    """Options of ``stepdpo demo`` (presets in :data:`DEMO_PRESETS`)."""

    out: str = option("runs/demo", "Output folder: results.json, report.md, plots, data, logs.")
    task: str = option(
        "default",
        "default: the embedded task (3 to 6 steps); long: its long-chain form (20 steps) and model.",
        choices=tuple(DEMO_TASKS),
    )
    seeds: list[int] = option(
        [0, 1, 2],
        "Seeds, comma-separated: each reruns collect, locate and rectify on its own problems with its "
        "own sampling seed, trains with its own data order, and is tested on its own held-out problems.",
    )
    full: bool = option(False, "Five seeds (0 to 4) instead of --seeds, and the setting's full sizes if it has them.")
    collect_problems: int | None = option(
        None, "Error-collection problems per seed, held out from SFT (default: the task's, 350; long 150).", min=1
    )
    eval_problems: int | None = option(None, "Held-out test problems per seed (default: 500; long 200).", min=1)
    val_problems: int | None = option(
        None, "Validation problems for --tune, disjoint from every test set (default: 300; long 150).", min=1
    )
    model: str = option(
        "",
        "smollm2-135m-instruct: the experiment on that real pretrained model (after a short SFT of it on the "
        "task's reference solutions) instead of the task's embedded model; empty: the embedded model.",
        choices=("", *DEMO_MODELS),
    )
    base_model: str = option("", "The model the arms start from, set by the run (its SFT model).", hidden=True)
    backend: str = option(
        "auto",
        "Generation backend of every stage and evaluation: auto (each installed backend probed on this machine "
        "with this run's prompts; the one projected faster for this run's sizes, start-ups included), hf or vllm.",
        choices=("auto", "hf", "vllm"),
    )
    scale: str = option(
        "", "quick: the setting's few-problem sizes (set by --quick).", choices=("", "quick"), hidden=True
    )
    val_pairs: int | None = option(
        None, "Common validation pairs of each kind (step, whole solution) for Fig. 2 (default 64; smollm2 16).", min=1
    )
    k: int | None = option(None, "Solutions sampled per problem (collect; default 4, smollm2 2).", min=1)
    n: int | None = option(None, "Continuations per error (rectify; default: 8, long 4).", min=1)
    ood_style: str | None = option(
        None,
        "Table 4's s_win the policy did not write: paraphrase (the step reworded), sft (the reference "
        "solution's step: the model's own text after an SFT on it) or solver (a terse solver's) (default: paraphrase).",
        choices=("paraphrase", "sft", "solver"),
    )
    judge: str = option(
        "verifier",
        "Localization: verifier (the exact checker) or rollout (no judge at all).",
        choices=("verifier", "rollout"),
    )
    epochs: float | None = option(None, "Training epochs (default: the setting's, 3).", min=1e-9)
    global_batch: int | None = option(None, "Pairs per optimizer step (default: the setting's; 32, smollm2 8).", min=1)
    picks: str = option("", "A JSON file of each arm's lr and beta (default: the packaged picks of --tune).")
    arms: list[str] = option(
        [],
        "The arms to train and test, comma-separated, from sft, dpo, dpo_shared_prefix, step_dpo, step_dpo_ood, "
        "step_dpo_matched, or all (default: the setting's; smollm2: sft,step_dpo, the primary comparison; the "
        "others all). A DPO arm brings step_dpo_matched, Step-DPO on as many pairs (Table 3 at equal pairs).",
    )
    rule: str | None = option(
        None,
        "Rectification's rule (rectify --rule): answer (the paper's) or step (step k alone, passed by the exact "
        "checker; no whole solutions for the shared-prefix DPO arm) (default: the setting's; smollm2 step, else answer).",
        choices=("answer", "step"),
    )
    max_per_error: int | None = option(
        None, "Step pairs per located error at most (build --max-per-error; default: the setting's, 1).", min=1
    )
    tune: bool = option(
        False,
        "Instead of the demo, pick each arm's lr and beta from the grid on validation problems "
        "(one data seed of its own); writes tuning.json and picks.json.",
    )
    lrs: list[float] = option([1e-5, 5e-5], "The --tune grid's learning rates.")
    betas: list[float] = option([0.1, 0.4], "The --tune grid's values of beta.")

    @property
    def run_seeds(self) -> list[int]:
        return list(range(5)) if self.full else list(self.seeds)

    @property
    def run_arms(self) -> tuple[str, ...]:
        """The arms this run trains and tests, in :data:`ARMS` order (the primary's always among them)."""
        asked = set(self.arms or self.setting.get("arms", ARMS))
        if "all" in asked:
            asked = set(ARMS)
        unknown = sorted(asked - set(ARMS))
        if unknown:
            raise ValueError(f"--arms: unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)} or all")
        if asked & set(MATCHED_TO):
            asked.add("step_dpo_matched")  # Table 3 at equal pairs and steps
        return tuple(a for a in ARMS if a in asked or a in ("sft", "step_dpo"))

    @property
    def name(self) -> str:
        """The setting's name in :data:`DEMO_TASKS` (the task's, or the model's)."""
        return DEMO_MODELS.get(self.model, self.task)

    @property
    def setting(self) -> dict[str, Any]:
        """The setting's model, sampling and sizes, with the sizes given as options in their place;
        ``model`` is the model the arms start from (after the setting's SFT, once run)."""
        sizes = (
            "collect_problems",
            "eval_problems",
            "val_problems",
            "k",
            "n",
            "val_pairs",
            "epochs",
            "global_batch",
            "ood_style",
            "rule",
            "max_per_error",
        )
        given = {k: getattr(self, k) for k in sizes}
        st = {**DEMO_DEFAULTS, **DEMO_TASKS[self.name]}
        quick, full = st.pop("quick", {}), st.pop("full", {})
        st = {**st, **(quick if self.scale == "quick" else full if self.full else {})}
        st = {**st, **{k: v for k, v in given.items() if v is not None}}
        if self.base_model:
            st["model"] = self.base_model
        return st


DEMO_PRESETS = {"quick": {"seeds": [0], "epochs": 1.0, "scale": "quick"}}
"""Named configurations of the demo: ``quick`` (one seed, the setting's ``quick`` sizes) checks the wiring."""


def hyperparameters(cfg: DemoConfig) -> dict[str, dict[str, float]]:
    """Each trained arm's ``{"lr", "beta"}`` for the setting, from ``cfg.picks`` or the packaged picks."""
    path = Path(cfg.picks) if cfg.picks else PICKS_FILE
    try:
        picks = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the arms' picks ({e})") from None
    picks = picks.get(cfg.name, picks) if isinstance(picks, dict) else picks
    missing = [a for a in TUNED if not isinstance(picks.get(a), dict) or not {"lr", "beta"} <= set(picks[a])]
    if missing:
        raise ValueError(f"{path}: no lr and beta for {', '.join(missing)} (setting {cfg.name})")
    return {a: {k: float(picks[SAME_PICKS.get(a, a)][k]) for k in ("lr", "beta")} for a in TRAINED}


def picks_note(cfg: DemoConfig) -> str | None:
    """What the picks file says of how the setting's picks were made, when they were not picked
    by ``--tune`` (its ``note``); None for tuned picks."""
    path = Path(cfg.picks) if cfg.picks else PICKS_FILE
    picks = json.loads(path.read_text())
    picks = picks.get(cfg.name, picks) if isinstance(picks, dict) else {}
    return picks.get("note") if isinstance(picks, dict) else None


def interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """The two-sided Student-t interval of the mean at ``level`` (at least two values)."""
    from scipy.stats import t

    m = statistics.fmean(values)
    half = float(t.ppf(0.5 + level / 2, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))
    return m - half, m + half


def mean_ci(values: list[float | None]) -> dict[str, Any]:
    """Mean and Student-t 95 % interval over seeds (the exact quantile for n - 1 degrees of freedom);
    one value has no interval (``ci95`` None). A seed without a value (None: an arm that got no
    pairs there) is kept in ``values`` and left out of the mean; with none, ``mean`` is None."""
    present = [v for v in values if v is not None]
    if not present:
        return {"mean": None, "ci95": None, "values": values}
    m = statistics.fmean(present)
    if len(present) < 2:
        return {"mean": m, "ci95": None, "values": values}
    return {"mean": m, "ci95": list(interval(present)), "values": values}


def paired(xs: list[float | None], ys: list[float | None]) -> list[float | None]:
    """Per-seed differences ``x - y``; None where either side has no value."""
    return [None if x is None or y is None else x - y for x, y in zip(xs, ys)]


def ood_pairs(pairs: list[StepPair], problems: dict[str, Problem], style: str = "paraphrase") -> list[StepPair]:
    """The same pairs with s_win written in another voice (Table 4's out-of-distribution s_win): the
    correct step k in :data:`~stepdpo.tasks.arithmetic.common.STYLES` ``style``, for the problems
    in ``problems`` (by id)."""
    from stepdpo.tasks.arithmetic import canonical_step

    out = []
    for p in pairs:
        problem = problems[p.meta["problem_id"]]
        chosen = canonical_step(problem, p.meta["first_error_step"], style=style)
        if chosen.strip() != p.rejected.strip():
            out.append(
                replace(p, chosen=chosen, full_chosen=None, full_rejected=None, meta={**p.meta, "format": "step_ood"})
            )
    return out


def train_config(
    cfg: DemoConfig,
    data: Path,
    fmt: str,
    run: Path,
    seed: int,
    lr: float,
    beta: float,
    ref_cache: Path,
    **overrides: Any,
):
    """The training settings every demo (and ablation) run shares; a setting's ``min_steps`` raises
    the optimizer steps of a training on few pairs to that many (more passes over its pairs), and
    its ``sft_weight`` adds that NLL term on the chosen completion to every arm alike."""
    from stepdpo.training.trainer import TrainConfig

    st = cfg.setting
    max_steps = 0
    if st.get("min_steps") and Path(data).exists():
        n_pairs = sum(1 for line in Path(data).read_text().splitlines() if line.strip())
        planned = math.ceil(st["epochs"] * math.ceil(n_pairs / st["global_batch"]))
        max_steps = max(planned, st["min_steps"]) if n_pairs else 0

    tc = TrainConfig(
        data=str(data),
        out=str(run),
        model=st["model"],
        pair_format=fmt,
        lr=lr,
        beta=beta,
        epochs=st["epochs"],
        global_batch=st["global_batch"],
        max_seq_len=1024,
        warmup_ratio=0.1,
        val_fraction=0.0,  # the demo scores every arm on common validation pairs instead (val_sets)
        eval_every=st["eval_every"],
        eval_on_start=True,  # the margins before training, beside those after
        max_steps=max_steps,
        sft_weight=st.get("sft_weight", 0.0),
        trainable_layers=st["trainable_layers"],
        seed=seed,
        dtype="fp32",
        ref_cache=str(ref_cache),
        report_to=cfg.report_to,
        project=cfg.project,
        run_name=f"{run.parent.name}-{run.name}",  # seed0-step_dpo
    )
    return replace(tc, **overrides)


def run_key(*settings: Any, files: tuple[str | Path, ...] = ()) -> str:
    """A key of the settings and the input files' contents that made an artefact (a trained model,
    an evaluation): an artefact on disk is reused only under the same key."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for f in files:
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


def train_key(tc: Any) -> str:
    """The key of a training run: every setting but where it writes, and the pairs it reads."""

    # where it reads and writes and reports, not how it trains
    where = ("out", "data", "val_sets", "ref_cache", "push_to_hub", "report_to", "run_name", "project")
    settings = {k: v for k, v in asdict(tc).items() if k not in where}
    names = [spec.split(":", 1)[0] for spec in tc.val_sets]
    return run_key(settings, names, files=(tc.data, *(spec.split(":", 1)[1] for spec in tc.val_sets)))


def kept(path: Path, key: str) -> dict[str, Any] | None:
    """What ``path`` (a JSON file) recorded, if it was made under ``key``; None otherwise."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("key") == key else None


def synthetic_pipeline(
    model: str,
    limit: int,
    out: str | Path,
    judge: str = "verifier",
    max_new_tokens: int = 200,
    k: int = 4,
    n: int = 8,
    data_seed: int | None = None,
    data: str = "synthetic",
    batch_size: int = 128,
    seed: int = 0,
    temperature: float = 0.8,
    top_p: float = 0.95,
    keep_correct: bool = False,
    recheck: bool = False,
    rollout_temperature: float = 1.0,
    rule: str = "answer",
    max_per_error: int = 1,
    backend: str = "hf",
) -> PipelineConfig:
    """The pipeline the demo and ``iterate`` run (the embedded synthetic task unless ``data`` names
    other problems), sampling with ``backend``; ``seed`` seeds every stage's sampling."""
    sampling = {"max_new_tokens": max_new_tokens, "seed": seed, "temperature": temperature, "top_p": top_p}
    return PipelineConfig(
        model=model,
        data=data,
        split="train",
        limit=limit,
        data_seed=data_seed,
        out=str(out),
        backend=backend,
        batch_size=batch_size,
        collect=CollectConfig(k=k, keep_correct=keep_correct, **sampling),
        locate=LocateConfig(judge=judge, max_new_tokens=max_new_tokens, seed=seed, temperature=rollout_temperature),
        rectify=RectifyConfig(n=n, rule=rule, **sampling),
        build=BuildConfig(max_per_error=max_per_error, max_per_problem=4, recheck=recheck),
    )
