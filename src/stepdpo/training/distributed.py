"""Training over several processes: the accelerator, and how one optimizer step's pairs split.

One global batch is one optimizer step, whatever the number of processes: every pair of it weighs
the same, and every process joins every gradient all-reduce (:func:`rank_share`).
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch


def make_accelerator() -> Any:
    """The accelerator of a training run, one process or several (``accelerate launch``, torchrun).

    The learning-rate schedule is sized in optimizer steps and stepped once per optimizer step:
    accelerate would otherwise step it once per process at every step, so that on two processes
    a cosine schedule reaches zero halfway and climbs back. On a machine without an accelerator,
    processes started by torchrun join one CPU process group (gloo) instead of each training alone.
    """
    from accelerate import Accelerator

    has_accelerator = torch.cuda.is_available() or (hasattr(torch, "accelerator") and torch.accelerator.is_available())
    accelerator = Accelerator(cpu=not has_accelerator, step_scheduler_with_optimizer=False)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes != launched:
        raise RuntimeError(
            f"launched as {launched} processes, but accelerate joined {accelerator.num_processes}: "
            "each would train alone; check the launcher's settings"
        )
    return accelerator


def rank_share(chunk: list[int], rank: int, world: int) -> tuple[list[int], float]:
    """This process's pairs of one optimizer step's ``chunk`` and the weight of each pair's loss.

    One optimizer step weighs every pair of the global batch equally, however the chunk splits: each
    pair's loss is scaled by ``world / len(chunk)`` because data-parallel training averages the
    processes' gradients. A process left without a pair (the last chunk of an epoch, smaller than
    the number of processes) still runs one pair at weight 0, so that it joins the gradient
    all-reduce instead of leaving the others waiting in it.
    """
    per_rank = math.ceil(len(chunk) / world)
    mine = chunk[rank * per_rank : (rank + 1) * per_rank]
    if not mine:
        return chunk[:1], 0.0
    return mine, world / len(chunk)


def rank_slice(items: list, rank: int, world: int) -> list:
    return items[rank::world]
