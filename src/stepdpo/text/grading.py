"""Grading a completion against a gold answer: extract the final answer, judge equivalence.

Extraction takes, in order: the last ``\\boxed{}`` (or ``\\fbox{}``), a GSM8K ``#### N`` line,
"The (final) answer is ...", then the last number. Equivalence is decided by math-verify, except
that two plain numbers are compared exactly in-process (fast, and no tolerance tricks).

Three known mistakes of common math graders are avoided on purpose:

- no percentage relaxation: ``0.5`` or ``5000`` is not accepted for ``50``;
- intervals keep their brackets: ``(1,2)`` is not ``[1,2]``;
- "The answer is: 18. I hope it is correct." extracts ``18``; trailing prose is cut, not glued on.

math-verify's own time limit uses SIGALRM, which only works on the main thread. Here the symbolic
check runs in a separate worker process that is killed when it exceeds ``timeout`` seconds, so the
limit holds from any thread and on adversarial input such as ``10^{10^{10^{10}}}``; the worker is
then restarted for the next call.
"""

from __future__ import annotations

import atexit
import json
import re
import select
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction

from stepdpo import child_env

MAX_ANSWER_CHARS = 8192
"""An extracted answer longer than this is not an answer; it is graded wrong without parsing
(a 30x30 matrix of two-digit entries is about 3,000 characters)."""

DEFAULT_TIMEOUT = 5.0
STARTUP_TIMEOUT = 120.0

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASHES = re.compile(r"(?m)^#### *(.+?)\s*$")
_ANSWER_IS = re.compile(r"(?i)the (?:final )?answer is\s*:?\s*")
_STEP_MARKER = re.compile(r"(?im)^[ \t*#]*step[ \t]+\d+[ \t]*[:.]")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_PROSE_WORD = re.compile(r"(?<![\\a-zA-Z{])[a-zA-Z]{3,}")
_PLAIN_NUMBER = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$|^[-+]?\d+/\d+$|^[-+]?\.\d+$")


@dataclass
class Grade:
    """The outcome of grading: correct or not, the extracted answer, and why when not correct."""

    correct: bool
    predicted: str | None
    reason: str = ""


def _last_boxed(text: str) -> str | None:
    """The content of the last closed ``\\boxed{...}``, in one pass over the text: each brace is
    matched once (a stack of open positions), so unclosed boxes cost linear time, not quadratic."""
    matches = list(_BOX.finditer(text))
    if not matches:
        return None
    closes: dict[int, int] = {}
    opened: list[int] = []
    for i, ch in enumerate(text):
        if ch == "{":
            opened.append(i)
        elif ch == "}" and opened:
            closes[opened.pop()] = i
    for m in reversed(matches):
        end = closes.get(m.end() - 1)
        if end is not None:
            return text[m.end() : end].strip()
    return None


def _cut_prose(answer: str) -> str:
    """Keep the mathematical head of "18. I hope it is correct." or "12 dollars"."""
    answer = answer.strip()
    if answer.startswith("$") and answer.count("$") >= 2:
        return answer[1 : answer.index("$", 1)].strip()
    answer = re.split(r"\.\s|\.$|\n", answer, maxsplit=1)[0]
    word = _PROSE_WORD.search(answer)
    if word:
        answer = answer[: word.start()]
    return answer.strip().rstrip(".,;: ").strip()


def extract_answer(completion: str) -> str | None:
    """The final answer written in ``completion``, or None if it states none."""
    boxed = _last_boxed(completion)
    if boxed is not None:
        return boxed
    hashes = _HASHES.findall(completion)
    if hashes:
        return _cut_prose(hashes[-1])
    found = list(_ANSWER_IS.finditer(completion))
    if found:
        answer = _cut_prose(completion[found[-1].end() :])
        if answer:
            return answer
    # the last number the text states; a step's own number ("Step 3:") states no answer
    numbers = _NUMBER.findall(_STEP_MARKER.sub(" ", completion))
    return numbers[-1].rstrip(",") if numbers else None


def reference_answer(reference: str) -> str:
    """The gold answer from a reference: a bare answer, or a solution ending in ``\\boxed{}``."""
    boxed = _last_boxed(reference)
    if boxed is not None:
        return boxed
    hashes = _HASHES.findall(reference)
    return _cut_prose(hashes[-1]) if hashes else reference.strip()


def _plain_number(s: str) -> Fraction | None:
    s = re.sub(r"^(?:\\\$|\$)\s*", "", s.strip())  # a leading currency sign
    if not _PLAIN_NUMBER.match(s):
        return None
    try:
        return Fraction(s.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


# ---- the math-verify worker -------------------------------------------------------------------


class _Verifier:
    """A math-verify worker process (``python -m stepdpo.text._verify_worker``), killed and restarted
    when one check exceeds the time limit. Safe to call from any thread."""

    module = "stepdpo.text._verify_worker"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None

    def _start(self) -> None:
        log = tempfile.TemporaryFile()  # noqa: SIM115  (the worker's stderr, read only to say why it did not start)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            bufsize=1,
            env=child_env(),  # the worker imports this same stepdpo, installed or not
        )
        # wait for the worker's imports (sympy, math-verify) before any check's clock starts
        ready, _, _ = select.select([self._proc.stdout], [], [], STARTUP_TIMEOUT)
        if not ready or self._proc.stdout.readline().strip() != "ready":
            self._kill()
            log.seek(0)
            err = log.read().decode(errors="replace").strip().splitlines()
            log.close()
            why = err[-1] if err else f"no reply in {STARTUP_TIMEOUT:.0f} s"
            hint = "; install it with pip install math-verify" if "math_verify" in why else ""
            raise RuntimeError(f"the math-verify worker did not start: {why}{hint}")
        log.close()

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()
        self._proc = None

    def check(self, gold: str, pred: str, timeout: float) -> tuple[bool, str]:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            assert self._proc is not None and self._proc.stdin and self._proc.stdout
            try:
                self._proc.stdin.write(json.dumps([gold, pred]) + "\n")
                self._proc.stdin.flush()
            except OSError:
                self._kill()
                return False, "verifier_crashed"
            ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
            line = self._proc.stdout.readline() if ready else ""
            if not line:
                self._kill()
                return False, "timeout" if not ready else "verifier_crashed"
            ok, why = json.loads(line)
            return bool(ok), why

    def close(self) -> None:
        with self._lock:
            self._kill()


_VERIFIER = _Verifier()
atexit.register(_VERIFIER.close)


def grade_detailed(completion: str, reference: str, timeout: float = DEFAULT_TIMEOUT) -> Grade:
    """Grade ``completion`` against ``reference`` (a bare answer or a solution with ``\\boxed{}``)."""
    predicted = extract_answer(completion)
    if predicted is None or not predicted.strip():
        return Grade(False, None, "no_answer")
    gold = reference_answer(reference)
    if "".join(predicted.split()) == "".join(gold.split()):
        return Grade(True, predicted, "")  # the same text: equivalent, whatever its length
    if len(predicted) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
        return Grade(False, predicted[:80], "answer_too_long")
    a, b = _plain_number(gold), _plain_number(predicted)
    if a is not None and b is not None:
        return Grade(a == b, predicted, "" if a == b else "wrong")
    ok, why = _VERIFIER.check(gold, predicted, timeout)
    return Grade(ok, predicted, "" if ok else (why or "wrong"))


def grade(completion: str, reference: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """True if the final answer in ``completion`` is equivalent to ``reference``."""
    return grade_detailed(completion, reference, timeout).correct
