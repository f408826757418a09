"""Sharing a trained model or a pair dataset on the Hugging Face Hub: what would be uploaded (the
plan, checked offline) and the upload itself, the one call that needs the network."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SKIPPED = ("checkpoints", "tb", "*.lock", "*.tmp*", "ref_logps.json", "*.decisions.jsonl", "*.damaged")
"""What stays on this machine: training state, caches, locks, a review's decisions."""


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

    api = HfApi(token=token)
    url = api.create_repo(plan.repo_id, repo_type=plan.repo_type, private=private, exist_ok=True)
    api.upload_folder(
        folder_path=str(plan.folder),
        repo_id=plan.repo_id,
        repo_type=plan.repo_type,
        allow_patterns=plan.files,
        commit_message="Upload with stepdpo push",
    )
    return str(url)
