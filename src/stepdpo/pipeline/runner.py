"""Running a stage over a stream of records: sharding, resuming, progress and the closing summary.

Stages (collect, locate, rectify) are plain functions from a chunk of input records to output
records; this runner owns everything else, as in datatrove's executors:

- ``--shard i/n`` keeps the inputs whose content hash falls in shard i of n;
- outputs are appended and flushed one record at a time (:class:`~stepdpo.recordio.AppendWriter`), and a
  ledger beside the output (``OUT.done.jsonl``) records each finished input by content hash (the
  input's id and the stage's settings) and the ids of the records it wrote, so a run killed at any
  moment and rerun skips finished inputs and writes no record twice; an input whose records were
  lost to a damaged line is redone;
- a progress bar with ETA, and a summary (rows in, rows out, rows dropped by reason) that counts
  earlier runs into the same output too.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepdpo.progress import Bar, log
from stepdpo.recordio import AppendWriter, exclusive, read_records, write_records
from stepdpo.records import content_id
from stepdpo.stages.base import ItemResult


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)`` with 0 <= i < n; None stays None."""
    if not spec:
        return None
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError as e:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {spec!r}") from e
    if not 0 <= i < n:
        raise ValueError(f"--shard {spec}: need 0 <= i < n")
    return i, n


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    if shard is None:
        return True
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % shard[1] == shard[0]


def shard_path(path: str | Path, shard: tuple[int, int] | None) -> Path:
    """``errors.jsonl`` -> ``errors.shard-1-of-4.jsonl`` for shard 1/4."""
    path = Path(path)
    if shard is None:
        return path
    return path.with_name(f"{path.stem}.shard-{shard[0]}-of-{shard[1]}{path.suffix}")


def ledger_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".done.jsonl")


@dataclass
class StageSummary:
    """What a stage did: inputs, outputs, and inputs or candidates dropped by reason."""

    stage: str
    rows_in: int = 0
    rows_out: int = 0
    resumed: int = 0
    dropped: Counter = field(default_factory=Counter)
    counters: Counter = field(default_factory=Counter)
    wall_s: float = 0.0
    output: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "resumed": self.resumed,
            "dropped": dict(self.dropped),
            "counters": dict(self.counters),
            "wall_s": round(self.wall_s, 2),
            "output": self.output,
        }

    def text(self) -> str:
        drops = ", ".join(f"{k}: {v}" for k, v in self.dropped.most_common()) or "none"
        extra = ", ".join(f"{k}: {v}" for k, v in sorted(self.counters.items()))
        line = (
            f"{self.stage}: {self.rows_in} in, {self.rows_out} out, dropped {sum(self.dropped.values())} ({drops})"
            f"{'; ' + extra if extra else ''}; {self.wall_s:.1f} s"
        )
        return line + (f" (resumed: {self.resumed} inputs were already done)" if self.resumed else "")


def run_stage(
    stage: str,
    inputs: Sequence[Any],
    process: Callable[[list[Any]], Iterable[ItemResult]],
    out: str | Path,
    *,
    settings: dict[str, Any],
    input_key: Callable[[Any], str] = lambda r: r.id,
    shard: tuple[int, int] | None = None,
    chunk_size: int = 16,
    executor: Any = None,
) -> StageSummary:
    """Run ``process`` over ``inputs`` in chunks, resumably, into the JSONL file ``out``.

    ``settings`` (the stage's options) are hashed into each input's ledger key, so rerunning with
    other settings into the same file redoes the work instead of silently mixing the two.
    ``executor`` (:mod:`stepdpo.pipeline.executors`; default: this process) computes the chunks;
    this function alone writes the output and the ledger, in input order.
    """
    from stepdpo.pipeline.executors import LocalExecutor

    executor = executor or LocalExecutor()
    t0 = time.time()
    out = shard_path(out, shard)
    tag = content_id(settings)
    keyed = [(content_id(input_key(r), tag), r) for r in inputs if in_shard(input_key(r), shard)]
    summary = StageSummary(stage=stage, rows_in=len(keyed), output=str(out))
    with (
        exclusive(out),
        AppendWriter(out, key="id") as writer,
        AppendWriter(ledger_path(out), key="key", keep_rows=True) as ledger,
    ):
        # the ledger and the output must agree: an input is done only if every record it wrote is
        # still in the output (a damaged or lost line sends its input back to be redone)
        done = {
            k for k, _ in keyed if k in ledger.done and all(i in writer.done for i in ledger.rows[k].get("ids", ()))
        }
        redo = sum(1 for k, _ in keyed if k in ledger.done and k not in done)
        if redo:
            log.warning(f"{out}: {redo} finished input(s) lost records to damage and are redone")
            summary.counters["redone_after_damage"] = redo
        summary.resumed = len(done)
        bar = Bar(stage, len(keyed), initial=summary.resumed, unit="row")
        # chunks are a fixed partition of the inputs, so a resumed run samples exactly as an
        # uninterrupted one would; a partly finished chunk is recomputed, its finished items skipped
        size = chunk_size * getattr(executor, "chunk_scale", 1)
        chunks = [keyed[start : start + size] for start in range(0, len(keyed), size)]
        todo = [(c, {k for k, _ in c if k not in done}) for c in chunks]
        todo = [(c, pending) for c, pending in todo if pending]
        for (_, pending), results in zip(todo, executor.map(process, [[r for _, r in c] for c, _ in todo])):
            for res in results:
                lkey = content_id(res.key, tag)
                if lkey not in pending:
                    continue
                for rec in res.records:
                    if rec.id not in writer.done:
                        writer.write(rec)
                ledger.write(
                    {
                        "key": lkey,
                        "out": len(res.records),
                        "ids": [rec.id for rec in res.records],
                        "dropped": dict(res.dropped),
                        "counters": dict(res.counters),
                    }
                )
                pending.discard(lkey)
                bar.update(1)
        bar.close()
    # the summary covers this run and earlier runs into the same output (the last row of an input)
    for k, _ in keyed:
        row = ledger.rows.get(k)
        if row is not None:
            summary.rows_out += row["out"]
            summary.dropped.update(row["dropped"])
            summary.counters.update(row.get("counters", {}))
    summary.wall_s = time.time() - t0
    return summary


def merge_shards(paths: Sequence[str | Path], out: str | Path, kind: str | None = None) -> int:
    """Concatenate shard outputs into ``out``, once per record id; returns the number written.
    Files of different record kinds (a stage's output and another's) are refused."""
    seen: set[str] = set()
    merged = []
    kinds: dict[str, str] = {}
    for p in paths:
        records, _ = read_records(p, kind)
        for r in records:
            kinds.setdefault(type(r).KIND, str(p))
            rid = r.id
            if rid not in seen:
                seen.add(rid)
                merged.append(r)
    if len(kinds) > 1:
        found = ", ".join(f"{k} ({f})" for k, f in kinds.items())
        raise ValueError(f"the files hold records of different kinds: {found}; merge one stage's shards at a time")
    return write_records(out, merged)
