"""stepdpo: Step-DPO (Lai et al., 2024) -- step-wise preference data and training for math reasoning.

The layout follows the paper. :mod:`stepdpo.records` is the data contract every stage reads and
writes (:mod:`stepdpo.recordio` reads and writes it). The data pipeline of Sec. 3.2 is
:mod:`stepdpo.stages`: :mod:`~stepdpo.stages.collect` (error collection),
:mod:`~stepdpo.stages.locate` (step localization), :mod:`~stepdpo.stages.rectify`
(rectification), :mod:`~stepdpo.stages.pairs` (the pairs D), and :mod:`~stepdpo.stages.evaluate`;
:mod:`stepdpo.pipeline` runs them resumably. Training with eq. 2 is :mod:`stepdpo.training`
(:mod:`~stepdpo.training.losses` holds the loss). :mod:`stepdpo.text` holds steps, prompts and
grading; :mod:`stepdpo.generation` the sampling backends; :mod:`stepdpo.tasks` the tasks with
exact step checkers; :mod:`stepdpo.default_model` the embedded models; :mod:`stepdpo.experiments`
the demo, ablations and iterative rounds built on all of it.
"""

from __future__ import annotations

import os
from pathlib import Path

__version__ = "0.1.0"


def child_env() -> dict[str, str]:
    """The environment for a Python child process (``python -m stepdpo...``) that must import this
    same stepdpo: this one's, with the folder holding the package first on ``PYTHONPATH``, so a
    source tree on ``sys.path`` (the benchmarks run that way) works as an install does."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")) if p
    )
    return env
