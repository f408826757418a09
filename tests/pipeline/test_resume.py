"""Killed, damaged and doubled runs: nothing lost, nothing duplicated, nothing changed."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from stepdpo.pipeline.run import run_collect, run_locate
from stepdpo.pipeline.runner import ledger_path
from stepdpo.recordio import AppendWriter, clean_stale_tmp, write_records
from stepdpo.stages.collect import CollectConfig
from stepdpo.stages.locate import make_judge

CCFG = CollectConfig(k=4, temperature=1.0, max_new_tokens=160, seed=1)


@pytest.fixture(scope="module")
def solutions(gen, problems, tmp_path_factory):
    path = tmp_path_factory.mktemp("sol") / "errors.jsonl"
    run_collect(gen, problems, path, CCFG)
    return path


def _rows(path):
    return sorted(path.read_text().splitlines())


def test_a_damaged_line_in_the_middle_is_redone_not_lost(gen, problems, solutions, tmp_path, stepdpo_log):
    part = tmp_path / "part.jsonl"
    part.write_text(solutions.read_text())
    run_collect(gen, problems, part, CCFG)  # the ledger now marks every input done
    lines = part.read_text().splitlines(keepends=True)
    lines[2] = lines[2][: len(lines[2]) // 2] + "\n"  # a torn line, then more complete lines
    part.write_text("".join(lines))
    s = run_collect(gen, problems, part, CCFG)
    assert _rows(part) == _rows(solutions)  # nothing lost, nothing twice
    assert f"{part}: 1 unreadable line(s) (line 3)" in "\n".join(stepdpo_log)
    assert s.counters["redone_after_damage"] == 1 and s.resumed == 11
    assert (tmp_path / "part.jsonl.damaged").read_text() == lines[2]
    # a damaged ledger line: its input is redone, its records not written twice
    led = ledger_path(part)
    led_lines = led.read_text().splitlines(keepends=True)
    led.write_text("".join(led_lines[:1] + ["{not json\n"] + led_lines[1:]))
    run_collect(gen, problems, part, CCFG)
    assert _rows(part) == _rows(solutions)


def test_the_rollout_judge_resumes_to_what_an_uninterrupted_run_writes(gen, solutions, tmp_path):
    """Killed after some chunks and rerun with a fresh judge (its caches empty), the rollout
    judge writes exactly what one uninterrupted run writes."""
    whole = tmp_path / "whole.jsonl"
    judge = dict(m=4, temperature=1.0, max_new_tokens=120)
    run_locate(make_judge("rollout", gen, **judge), solutions, whole, chunk_size=4)

    class Killed(Exception):
        pass

    class DiesAfter:  # a generator that is killed after a few calls
        def __init__(self, inner, calls):
            self.inner, self.calls = inner, calls
            self.tokenizer, self.model_name = inner.tokenizer, inner.model_name

        def generate(self, prompts, sampling):
            self.calls -= 1
            if self.calls < 0:
                raise Killed
            return self.inner.generate(prompts, sampling)

    part = tmp_path / "part.jsonl"
    for calls in (3, 7):
        with pytest.raises(Killed):
            run_locate(make_judge("rollout", DiesAfter(gen, calls), **judge), solutions, part, chunk_size=4)
    assert 0 < len(part.read_text().splitlines()) < len(whole.read_text().splitlines())
    run_locate(make_judge("rollout", gen, **judge), solutions, part, chunk_size=4)
    assert _rows(part) == _rows(whole)


def test_outputs_have_normal_permissions_and_killed_writers_leave_nothing(tmp_path):
    out = tmp_path / "pairs.jsonl"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".pairs.jsonl.{dead.pid}.tmp"
    stale.write_text("half a file")
    alive = tmp_path / f".pairs.jsonl.{os.getpid()}.tmp"  # a live writer's file is left alone
    alive.write_text("x")
    assert clean_stale_tmp(out) == [stale] and alive.exists()
    alive.unlink()
    stale.write_text("half a file")
    umask = os.umask(0o022)
    try:
        write_records(out, [{"id": "a"}])
    finally:
        os.umask(umask)
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl"]


def test_a_full_disk_is_a_clear_error_and_the_rerun_completes(tmp_path):
    """A file size limit gives the same EFBIG a full disk gives ENOSPC."""
    out = tmp_path / "out.jsonl"
    script = textwrap.dedent(
        f"""
        import resource, sys
        from stepdpo.recordio import AppendWriter, DiskFull
        resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))
        try:
            with AppendWriter({str(out)!r}) as w:
                for i in range(100):
                    w.write({{"id": str(i), "text": "x" * 100}})
        except DiskFull as e:
            print(e)
            sys.exit(3)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert f"no space left writing {out}" in proc.stdout and "run the same command again" in proc.stdout
    with AppendWriter(out) as w:  # the rerun: the torn last row is cut, the rest kept
        kept = len(w.done)
        for i in range(100):
            if str(i) not in w.done:
                w.write({"id": str(i), "text": "x" * 100})
    assert 0 < kept < 100 and [json.loads(x)["id"] for x in out.read_text().splitlines()] == [
        str(i) for i in range(100)
    ]
    whole = tmp_path / "whole.jsonl"
    script = textwrap.dedent(
        f"""
        import resource, sys
        from stepdpo.recordio import DiskFull, write_records
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
        try:
            write_records({str(whole)!r}, [{{"id": str(i), "text": "y" * 100}} for i in range(100)])
        except DiskFull as e:
            print(e)
            sys.exit(3)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 3 and f"no space left writing {whole}" in proc.stdout, proc.stderr
    assert not whole.exists() and not list(tmp_path.glob(".whole.jsonl.*"))
