"""The model card a trained model folder carries (its ``README.md``, in the Hub's format): what it
was trained from and on, how, with which results, and how to cite the method."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from stepdpo.cards import card_text
from stepdpo.models import NAMED_MODELS

HUB_NAMES = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}
"""The hub id of each named model that has one (the embedded tiny models have none)."""

CITATION = """@article{lai2024stepdpo,
  title   = {Step-DPO: Step-wise Preference Optimization for Long-chain Reasoning of LLMs},
  author  = {Lai, Xin and Tian, Zhuotao and Chen, Yukang and Yang, Senqiao and Peng, Xiangru and Jia, Jiaya},
  journal = {arXiv preprint arXiv:2406.18629},
  year    = {2024}
}"""


def _base_model(model: str) -> str | None:
    """The base model as the Hub names it: a hub id, a named model's hub id, or none for a folder."""
    if model in HUB_NAMES:
        return HUB_NAMES[model]
    if model in NAMED_MODELS or Path(model).expanduser().exists():
        return None
    return model


def hub_dataset(data: str) -> str | None:
    """The Hub id of a data source (``hub:ORG/NAME``, or a named source such as ``gsm8k``), or
    none for a local file or a generated task: the card's ``datasets`` must not name a file, which
    the Hub would turn into a dead link."""
    from stepdpo.problems import HUB_SOURCES

    if data.startswith("hub:"):
        return data[4:].split(":")[0] or None
    if data in HUB_SOURCES:
        return HUB_SOURCES[data][0]
    return None


def _base_license(model: str) -> str | None:
    """The license the base model's own card declares, where its folder has one."""
    from huggingface_hub import ModelCard

    from stepdpo.models import resolve_model_path

    card = Path(resolve_model_path(model)) / "README.md"
    if not card.exists():
        return "apache-2.0" if model in HUB_NAMES else None  # SmolLM2 is Apache-2.0
    try:
        return ModelCard.load(card).data.license
    except Exception:  # a README that is not a card
        return None


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("stepdpo", "torch", "transformers", "accelerate", "peft"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


DPO_KEYS = ("pair_format", "loss", "beta", "lr", "epochs", "global_batch", "warmup_ratio", "lora_r", "dtype", "seed")
SFT_KEYS = ("lr", "epochs", "batch_size", "warmup_ratio", "max_length", "prompt_format", "seed")
CARD_DATA = "stepdpo_card.json"
"""Beside a model's card: what it was rendered from, so that ``stepdpo eval`` can add its result."""


def model_card(
    cfg: dict[str, Any], steps: int, final: dict[str, Any], evals: list[dict[str, Any]] | None = None
) -> str:
    """The card of a model trained with the options ``cfg`` (a TrainConfig as a dict) for ``steps``
    optimizer steps, ending with the logged row ``final``; ``evals`` are ``stepdpo eval`` results
    on it (``data``, ``accuracy``, ``name``), listed and put in the card's ``model-index``."""

    name, model = Path(cfg["out"]).name, cfg["model"]
    base = _base_model(model)
    if "pair_format" not in cfg:  # stepdpo sft
        method, keys = "supervised fine-tuning on step-by-step reference solutions", SFT_KEYS
    else:
        method = "Step-DPO (eq. 2: one reasoning step per pair, no EOS)" if cfg["pair_format"] == "step" else "DPO"
        keys = DPO_KEYS
    trained_on = hub_dataset(cfg["data"])
    meta: dict[str, Any] = {
        "base_model": base,
        "datasets": [trained_on] if trained_on else None,
        "library_name": "transformers",
        "license": _base_license(model),
        "tags": ["stepdpo", "step-dpo", "dpo"],  # dpo: the method's family, as the Hub files it
    }
    if evals:
        meta["model-index"] = [
            {
                "name": name,
                "results": [
                    {
                        "task": {"type": "text-generation", "name": "Math reasoning"},
                        "dataset": _index_dataset(e),
                        "metrics": [{"type": "accuracy", "value": round(100 * e["accuracy"], 2), "name": e["name"]}],
                    }
                    for e in evals
                ],
            }
        ]
    shown = [k for k in ("loss", "rewards/accuracies", "rewards/margins", "eval/rewards/accuracies") if k in final]
    body = [
        f"# {name}",
        "",
        f"Trained from `{base or model}` with {method} by stepdpo, on `{Path(cfg['data']).name}`, "
        f"for {steps} optimizer steps.",
        "",
        "## Settings",
        "",
        *(f"- `{k}`: {cfg[k]}" for k in keys),
        "",
        "## Training, last logged step",
        "",
        *(f"- `{k}`: {final[k]:.4f}" for k in shown),
        "",
        "## Evaluation",
        "",
        *(
            [f"- {_eval_label(e)}: {e['name']} {100 * e['accuracy']:.1f} %" for e in evals]
            if evals
            else ["Not evaluated yet: `stepdpo eval --model <this folder>` adds its result here."]
        ),
        "",
        "## Framework versions",
        "",
        *(f"- {k} {v}" for k, v in _versions().items()),
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
    ]
    return card_text(meta, body)


def write_card(folder: Path, cfg: dict[str, Any], steps: int, final: dict[str, Any], evals: list | None = None) -> None:
    """The model folder's ``README.md`` and what it was made from."""
    from stepdpo.recordio import atomic_write_text

    atomic_write_text(folder / "README.md", model_card(cfg, steps, final, evals))
    data = {"config": cfg, "steps": steps, "final": final, "evals": evals or []}
    atomic_write_text(folder / CARD_DATA, json.dumps(data, indent=1, default=str))


def _eval_label(e: dict[str, Any]) -> str:
    """``data``, its split and problem count where known: "gsm8k (test, 1319 problems)"."""
    extra = ", ".join(x for x in (e.get("split"), f"{e['n']} problems" if e.get("n") else None) if x)
    return f"{e['data']} ({extra})" if extra else e["data"]


def _index_dataset(e: dict[str, Any]) -> dict[str, Any]:
    """The ``dataset`` of a model-index result: the Hub id as its type where the data has one."""
    out: dict[str, Any] = {"name": _eval_label(e), "type": hub_dataset(e["data"]) or e["data"]}
    if e.get("split"):
        out["split"] = e["split"]
    return out


def add_eval(
    folder: Path, data: str, accuracy: float, name: str, n: int | None = None, split: str | None = None
) -> bool:
    """Add an evaluation to a trained model's card (False: the folder has no card of ours). An
    evaluation replaces only one of the same data, split, problem count and kind; others are kept."""
    path = Path(folder) / CARD_DATA
    if not path.exists():
        return False
    card = json.loads(path.read_text())
    key = (data, split, n, name)
    evals = [e for e in card["evals"] if (e["data"], e.get("split"), e.get("n"), e["name"]) != key]
    evals.append({"data": data, "accuracy": accuracy, "name": name, "n": n, "split": split})
    write_card(Path(folder), card["config"], card["steps"], card["final"], evals)
    return True
