"""What a person decided, kept so that the page can be closed, the server killed, and the work
resumed with no decision lost or asked twice.

Every decision is appended (and fsync'ed) to ``OUT.decisions.jsonl`` before its record goes to
the output; on start, a decision whose record is missing from the output (a kill in between) is
written again from the decision. In ``locate`` mode the output holds located errors with
``judge = "human"``; in ``pairs`` mode the kept pairs (the paper's s_win filter).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepdpo.recordio import AppendWriter, atomic_write_text, iter_raw_rows, read_records
from stepdpo.records import NO_WRONG_STEP, LocatedError, Solution, StepPair
from stepdpo.text.steps import split_steps, step_body

LOCATE_DECISIONS = ("step", "no_wrong_step", "skip")
PAIR_DECISIONS = ("keep", "drop", "skip")
UNDONE = "undone"  # a decisions-file row that takes back the item's earlier decision


def decisions_path(out: str | Path) -> Path:
    """The decisions file of an output: its whole name and ``.decisions.jsonl`` (``h.jsonl`` and
    ``h.json`` keep apart)."""
    out = Path(out)
    return out.with_name(out.name + ".decisions.jsonl")


def load_items(path: str | Path, mode: str) -> list[LocatedError | StepPair]:
    """The items to review: located errors (or wrong solutions, D1) in ``locate`` mode, step pairs
    in ``pairs`` mode. Which of the two a file holds is read from its first row; bad rows raise
    :class:`DataError` naming the file and line."""
    if mode == "pairs":
        items, _ = read_records(path, "step_pair")
        return items
    first = next((row for _, row in iter_raw_rows(path) if isinstance(row, dict)), None)
    if first is None or "solution" in first:
        items, _ = read_records(path, "located_error")
        return items
    sols, _ = read_records(path, "solution")
    return [LocatedError(s, None, "none", reason="not_judged") for s in sols]


@dataclass
class Review:
    """The review of ``items`` into ``out``: which are decided, and recording new decisions."""

    items: list[Any]
    out: Path
    mode: str
    annotator: str
    decided: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._last: str | None = None  # the last decision made here, which undo takes back
        self._first: str | None = None  # an item just undone, asked next
        self._decisions = AppendWriter(decisions_path(self.out), key="id", keep_rows=True)
        self._by_id = {item.id: item for item in self.items}
        self.decided = {iid: d for iid, d in self._decisions.rows.items() if d.get("decision") != UNDONE}
        self._output = AppendWriter(self.out, key="id", keep_rows=True)
        self._reconcile()

    def _reconcile(self) -> None:
        """Make the output the records of the decisions. A record whose decision line was lost
        (damage in the decisions file) gives its decision back; a record whose decision was
        undone is removed; a decision whose record is missing (a kill in between) writes it."""
        for iid, rec in self._output.rows.items():
            if iid not in self._decisions.rows and iid in self._by_id:
                self._write_decision(self._decision_from_record(self._by_id[iid], rec))
        want = {iid: self._record(self._by_id[iid], d) for iid, d in self.decided.items() if iid in self._by_id}
        want = {iid: r for iid, r in want.items() if r is not None}
        if set(self._output.rows) - set(want):  # an undone decision's record: rewrite without it
            self._output.close()
            kept = [json.dumps(row, ensure_ascii=False) + "\n" for iid, row in self._output.rows.items() if iid in want]
            atomic_write_text(self.out, "".join(kept))
            self._output = AppendWriter(self.out, key="id", keep_rows=True)
        for iid, rec in want.items():
            if iid not in self._output.done:
                self._output.write(rec)

    def _decision_from_record(self, item: Any, rec: dict) -> dict:
        row = {"id": item.id, "annotator": self.annotator, "time": round(time.time(), 3), "recovered": True}
        if self.mode == "pairs":
            return {**row, "decision": "keep"}
        k = rec.get("first_error_step")
        row["annotator"] = (rec.get("evidence") or {}).get("annotator", self.annotator)
        row["auto"] = {"judge": item.judge, "step": item.first_error_step, "reason": item.reason}
        return {**row, "decision": "step", "step": k} if k else {**row, "decision": "no_wrong_step"}

    def _write_decision(self, row: dict) -> None:
        self._decisions.write(row)
        self._decisions.rows[row["id"]] = row
        if row["decision"] == UNDONE:
            self.decided.pop(row["id"], None)
        else:
            self.decided[row["id"]] = row

    def close(self) -> None:
        self._decisions.close()
        self._output.close()

    def pending(self) -> list[Any]:
        """Items not decided yet; an item just undone comes first."""
        todo = [item for item in self.items if item.id not in self.decided]
        return sorted(todo, key=lambda it: it.id != self._first) if self._first else todo

    def decide(self, iid: str, decision: str, step: int | None = None) -> dict:
        """Record one decision; a second decision on the same item is refused."""
        allowed = LOCATE_DECISIONS if self.mode == "locate" else PAIR_DECISIONS
        if decision not in allowed:
            raise ValueError(f"decision must be one of {', '.join(allowed)}")
        item = self._by_id.get(iid)
        if item is None:
            raise KeyError(f"no item {iid!r}")
        if decision == "step":
            n = len(item.solution.steps)
            if not isinstance(step, int) or isinstance(step, bool) or not 1 <= step <= n:
                raise ValueError(f"step must be a whole number 1..{n}")
        with self._lock:
            if iid in self.decided:
                raise ValueError(f"item {iid} is already decided")
            row = {"id": iid, "decision": decision, "annotator": self.annotator, "time": round(time.time(), 3)}
            if decision == "step":
                row["step"] = step
            if self.mode == "locate":
                row["auto"] = {"judge": item.judge, "step": item.first_error_step, "reason": item.reason}
            self._write_decision(row)
            rec = self._record(item, row)
            if rec is not None:
                self._output.write(rec)
                self._output.rows[iid] = rec.to_dict()
            self._last = iid
            return row

    @property
    def can_undo(self) -> bool:
        return self._last is not None and self._last in self.decided

    def undo(self) -> str:
        """Take back the last decision made on this page (its record leaves the output); the
        item is asked again. Returns its id."""
        with self._lock:
            iid = self._last
            if iid is None or iid not in self.decided:
                raise ValueError("no decision to undo")
            self._write_decision(
                {"id": iid, "decision": UNDONE, "annotator": self.annotator, "time": round(time.time(), 3)}
            )
            self._reconcile()
            self._last = None
            self._first = iid
            return iid

    def _record(self, item: Any, d: dict) -> Any:
        if d["decision"] == "skip" or d["decision"] == "drop":
            return None
        if self.mode == "pairs":
            return item
        sol: Solution = item.solution
        k = d.get("step") if d["decision"] == "step" else None
        evidence = {"annotator": d["annotator"], "auto_judge": item.judge, "auto_step": item.first_error_step}
        return LocatedError(sol, k, "human", evidence=evidence, reason=None if k else NO_WRONG_STEP)

    def summary(self) -> dict[str, Any]:
        """Decisions so far and, in ``locate`` mode, agreement with the automatic judge."""
        counts = Counter(d["decision"] for d in self.decided.values())
        out: dict[str, Any] = {"items": len(self.items), "decided": len(self.decided), "decisions": dict(counts)}
        if self.mode == "locate":
            agree: dict[str, Counter] = {}
            for d in self.decided.values():
                auto = d.get("auto") or {}
                if d["decision"] == "skip" or auto.get("judge") in (None, "none"):
                    continue
                human = d.get("step")  # None: no wrong step
                machine = auto.get("step")
                if machine is None and auto.get("reason") != NO_WRONG_STEP:
                    verdict = "judge abstained"
                elif machine == human:
                    verdict = "exact"
                elif human is None:
                    verdict = "judge found an error, person none"
                elif machine is None:
                    verdict = "judge found none, person an error"
                else:
                    verdict = "too early" if machine < human else "too late"
                agree.setdefault(auto["judge"], Counter())[verdict] += 1
            out["agreement"] = {j: dict(c) for j, c in agree.items()}
        return out


def item_view(item: Any, mode: str) -> dict[str, Any]:
    """What the page shows of an item."""
    if mode == "pairs":
        prior = [step_body(s) for s in split_steps(item.initial_reason_steps)[1]]
        return {
            "id": item.id,
            "problem": item.prompt,
            "answer": item.answer,
            "prior": prior,
            "chosen": item.chosen,
            "rejected": item.rejected,
        }
    sol = item.solution
    auto = None
    if item.judge not in ("none",):
        auto = {"judge": item.judge, "step": item.first_error_step, "reason": item.reason, "evidence": item.evidence}
    return {
        "id": item.id,
        "problem": sol.problem,
        "answer": sol.answer,
        "reference": sol.reference,
        "predicted": sol.predicted,
        "steps": [step_body(s) for s in sol.steps],
        "auto": auto,
    }
