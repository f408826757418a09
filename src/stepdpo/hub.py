"""Sharing a trained model or a pair dataset on the Hugging Face Hub: what would be uploaded (the
plan, checked offline) and the upload itself, the one call that needs the network."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SKIPPED = (
    "checkpoints", "tb", "*.lock", "*.tmp*", "ref_logps.json", "*.decisions.jsonl", "*.damaged", "*.done.jsonl",
    "trackers.json", "mlflow.db", "wandb",
)  # fmt: skip
"""What stays on this machine: training state, caches, locks, a review's decisions, the stages'
resume journals, the local tracker stores."""


class HubError(ValueError):
    """The Hub cannot take the upload (offline, unreachable, no token, a refused repo): one line
    saying what failed and what to do."""


def _offline_by_choice() -> bool:
    import os

    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_hub(repo_id: str, token: str | None = None) -> str:
    """Before any long work: the repo id is valid, the Hub is not switched off, a token is there and
    the Hub answers to it (as transformers' Trainer checks at init). Returns the account's name."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise HubError(f"{repo_id!r} is not a Hub repo id (OWNER/NAME): {e}") from None
    if repo_id.count("/") != 1:
        raise HubError(f"{repo_id!r}: a Hub repo is OWNER/NAME")
    if _offline_by_choice():
        raise HubError("HF_HUB_OFFLINE is set, so nothing can be pushed: unset it, or push later with `stepdpo push`")
    token = token or get_token()
    if not token:
        raise HubError("no Hugging Face token: set HF_TOKEN or run `hf auth login`, then rerun")
    try:
        return HfApi(token=token).whoami()["name"]
    except Exception as e:  # every failure here means the same to the user
        raise HubError(
            f"the Hub did not accept the token or could not be reached ({_reason(e)}); check the network and HF_TOKEN"
        ) from None


def _reason(e: BaseException) -> str:
    """The first line of an error, its type in front: short enough for one line."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text[:160]}" if text else type(e).__name__


@dataclass
class UploadPlan:
    folder: Path
    repo_id: str
    repo_type: str  # model or dataset
    files: list[str] = field(default_factory=list)

    def text(self) -> str:
        return (
            f"{len(self.files)} files of {self.folder} to the {self.repo_type} repo {self.repo_id}: "
            + ", ".join(self.files[:8])
            + (" ..." if len(self.files) > 8 else "")
        )


def plan_upload(folder: str | Path, repo_id: str) -> UploadPlan:
    """What ``push`` would send: a model folder (``config.json``) as a model repo, anything else
    holding pairs as a dataset repo; each needs its card (``README.md``), which says what it is."""
    from fnmatch import fnmatch

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"{repo_id!r}: a Hub repo is OWNER/NAME")
    repo_type = "model" if (folder / "config.json").exists() else "dataset"
    if not (folder / "README.md").exists():
        raise ValueError(
            f"{folder}: no README.md card; a model folder written by `stepdpo train` and a pipeline's output "
            "folder carry one"
        )
    files = sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and not any(fnmatch(part, pat) for part in p.relative_to(folder).parts for pat in SKIPPED)
    )
    if repo_type == "dataset" and not any(f.endswith((".jsonl", ".json", ".parquet", ".arrow")) for f in files):
        raise ValueError(f"{folder}: neither a model folder (config.json) nor a folder of pairs")
    return UploadPlan(folder, repo_id, repo_type, files)


def upload(plan: UploadPlan, private: bool = False, token: str | None = None) -> str:
    """Create the repo if needed and upload the plan's files; returns the repo's address. The token
    comes from the environment (``HF_TOKEN``) or ``huggingface-cli login``, never from a file of ours."""
    from huggingface_hub import HfApi

    if _offline_by_choice():
        raise HubError("HF_HUB_OFFLINE is set, so nothing can be pushed: unset it and rerun `stepdpo push`")
    api = HfApi(token=token)
    try:
        url = api.create_repo(plan.repo_id, repo_type=plan.repo_type, private=private, exist_ok=True)
        api.upload_folder(
            folder_path=str(plan.folder),
            repo_id=plan.repo_id,
            repo_type=plan.repo_type,
            allow_patterns=plan.files,
            commit_message="Upload with stepdpo push",
        )
    except Exception as e:  # offline, unreachable, refused: the same to the user
        raise HubError(
            f"upload of {plan.folder} to {plan.repo_id} failed ({_reason(e)}); check the network, HF_TOKEN and "
            "your rights on the repo, then rerun `stepdpo push` (it sends the folder again)"
        ) from None
    return str(url)
