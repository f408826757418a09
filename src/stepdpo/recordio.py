"""Reading and writing records: JSONL, JSON arrays and Parquet, validated row by row.

A bad row is an error that names the file and the line (``data.jsonl:17: missing field
'chosen'``), or, when the caller asks to skip, it is counted by reason and reported. Writers are
atomic (whole files) or append-only with a flush per record (stages that resume).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepdpo.records import RECORD_TYPES, RecordError, detect_kind


class DataError(ValueError):
    """A data file problem, located at ``path:line``."""

    def __init__(self, path: str | os.PathLike, line: int | None, message: str, reason: str = "invalid"):
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


@dataclass
class ReadReport:
    """What a read kept and what it skipped, by reason (with the first few locations)."""

    path: str
    rows: int = 0
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    problems: list[DataError] = field(default_factory=list)

    def summary(self) -> str:
        if not self.skipped:
            return f"{self.path}: {self.kept} rows, all valid"
        reasons = ", ".join(f"{r}: {n}" for r, n in self.skipped.most_common())
        return f"{self.path}: {self.kept} of {self.rows} rows kept; skipped {sum(self.skipped.values())} ({reasons})"


def iter_raw_rows(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_or_row_number, parsed_row)``; a row that is not valid JSON (or not UTF-8)
    yields a DataError. A UTF-8 byte-order mark is accepted."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "file not found", "missing_file")
    if path.is_dir():
        raise DataError(path, None, "is a folder, not a data file", "not_a_file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        from stepdpo.parquet import read_rows

        try:
            rows = read_rows(path)
        except ValueError as e:
            raise DataError(path, None, str(e), "bad_file") from e
        yield from enumerate(rows, 1)
        return
    with open(path, "rb") as fh:
        head = fh.read(1 << 16).decode("utf-8", errors="replace").lstrip("\ufeff").lstrip()
    if suffix == ".json" and head.startswith("["):
        try:
            with open(path, encoding="utf-8-sig") as fh:
                rows = json.load(fh)
        except json.JSONDecodeError as e:
            raise DataError(path, e.lineno, f"malformed JSON ({e.msg})", "malformed_json") from e
        except UnicodeDecodeError as e:
            raise DataError(path, None, f"not UTF-8 text (byte {e.start})", "not_utf8") from e
        yield from enumerate(rows, 1)
        return
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield lineno, DataError(path, lineno, f"not UTF-8 text (byte {e.start} of the line)", "not_utf8")
                continue
            if lineno == 1:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                yield lineno, DataError(path, lineno, f"malformed JSON ({e.msg} at column {e.colno})", "malformed_json")


def read_records(
    path: str | os.PathLike,
    kind: str | None = None,
    *,
    skip_invalid: bool = False,
    convert: Callable[[dict], dict] | None = None,
) -> tuple[list[Any], ReadReport]:
    """Read and validate every row of a data file as records of ``kind`` (auto-detected if None).

    ``convert`` maps a raw row to the record's fields first (used by the GSM8K/MATH loaders).
    Raises :class:`DataError` on the first bad row unless ``skip_invalid``; then bad rows are
    counted by reason in the returned :class:`ReadReport`.
    """
    report = ReadReport(path=str(path))
    records: list[Any] = []
    for lineno, row in iter_raw_rows(path):
        report.rows += 1
        try:
            if isinstance(row, DataError):
                raise row
            if not isinstance(row, dict):
                raise DataError(path, lineno, f"expected a JSON object, got {type(row).__name__}", "not_an_object")
            try:
                row = convert(row) if convert else row
                cls = RECORD_TYPES[kind or detect_kind(row)]
                records.append(cls.from_dict(row))
            except RecordError as e:
                raise DataError(path, lineno, str(e), e.reason) from e
        except DataError as e:
            if not skip_invalid:
                raise
            report.skipped[e.reason] += 1
            report.problems.append(e)
            continue
        report.kept += 1
    return records, report


def validate_file(path: str | os.PathLike, kind: str | None = None) -> ReadReport:
    """Check every row of a file and return all problems found (``stepdpo validate``)."""
    try:
        _, report = read_records(path, kind, skip_invalid=True)
    except DataError as e:
        report = ReadReport(path=str(path))
        report.skipped[e.reason] += 1
        report.problems.append(e)
        return report
    if report.rows == 0:
        report.skipped["empty_file"] += 1
        report.problems.append(DataError(path, None, "no rows: the file is empty", "empty_file"))
    return report


def _to_dict(r: Any) -> dict:
    return r.to_dict() if hasattr(r, "to_dict") else dict(r)


_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


class DiskFull(OSError):
    """The disk (or a file size limit) ran out while writing an output."""

    def __str__(self) -> str:
        return str(self.strerror)


def is_disk_full(e: BaseException) -> bool:
    """Whether an error from any writer (Python's, or a library's own, such as safetensors')
    means the disk or a file size limit ran out."""
    if isinstance(e, OSError) and e.errno in _FULL:
        return True
    text = str(e)
    return any(f"os error {n}" in text for n in _FULL) or "No space left" in text or "File too large" in text


@contextlib.contextmanager
def saving(path: str | os.PathLike, what: str = "", written: Callable[[], int | None] = lambda: None) -> Iterator[None]:
    """Turn a full disk while writing ``path`` (ours, or a library's save of ``what``) into
    :class:`DiskFull`, naming the file and, where ``written`` can tell, the bytes written."""
    try:
        yield
    except Exception as e:
        if isinstance(e, DiskFull) or not is_disk_full(e):
            raise
        size = written()
        code = e.errno if isinstance(e, OSError) and e.errno else errno.ENOSPC
        raise DiskFull(
            code,
            f"no space left writing {what + ' to ' if what else ''}{path}"
            + (f" after {size:,} bytes" if size is not None else "")
            + "; free some space and run the same command again: it resumes where it stopped",
        ) from None


def _tmp_name(path: Path) -> Path:
    """The temporary file of an atomic write: hidden, beside the output, named by the writer's pid."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def clean_stale_tmp(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files of ``path`` left by writers that were killed (their process is gone);
    returns what was removed."""
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 : -4]
        try:
            os.kill(int(pid), 0)
            continue  # its writer is alive
        except (ValueError, ProcessLookupError):
            pass
        except PermissionError:
            continue  # alive, someone else's
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a whole text file atomically (temporary file, fsync, rename), with normal permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(path)
    tmp = _tmp_name(path)
    try:
        with saving(path), open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_records(path: str | os.PathLike, records: Iterable[Any]) -> int:
    """Write records atomically (temporary file, then rename) as JSONL, JSON or Parquet by suffix.
    The file gets the usual permissions (the umask's), and temporary files of killed earlier
    writers of the same output are removed first."""
    path = Path(path)
    if path.is_dir():
        raise DataError(path, None, "is a folder; give a file name for the output", "not_a_file")
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [_to_dict(r) for r in records]
    clean_stale_tmp(path)
    tmp = _tmp_name(path)
    try:
        with saving(path, written=lambda: tmp.stat().st_size if tmp.exists() else None):
            if path.suffix.lower() == ".parquet":
                from stepdpo.parquet import write_table

                write_table(rows, tmp)
            else:
                with open(tmp, "w", encoding="utf-8") as fh:
                    if path.suffix.lower() == ".json":
                        json.dump(rows, fh, ensure_ascii=False, indent=1)
                    else:
                        for row in rows:
                            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(rows)


class AppendWriter:
    """An append-only JSONL file that survives being killed mid-write, and damage.

    On open, every complete, parseable row is kept and ``done`` holds its value of ``key``, so a
    rerun skips finished work and writes no record twice. A torn last line (a kill during a write)
    is cut off; an unreadable line anywhere else (damage) is reported by line number, moved to
    ``PATH.damaged`` and dropped, so the work it held is done again rather than silently lost.
    ``rows`` keeps each row by key when ``keep_rows`` is set. Each record is flushed and fsync'ed
    as it is written.
    """

    def __init__(self, path: str | os.PathLike, key: str = "id", keep_rows: bool = False):
        self.path = Path(path)
        if self.path.is_dir():
            raise DataError(self.path, None, "is a folder; give a file name for the output", "not_a_file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.key, self.keep_rows = key, keep_rows
        self.done: set[str] = set()
        self.rows: dict[str, dict] = {}
        self._repair_and_scan()
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115  (held open for appends, closed by close())

    def _add(self, row: Any) -> None:
        if isinstance(row, dict) and self.key in row:
            self.done.add(str(row[self.key]))
            if self.keep_rows:
                self.rows[str(row[self.key])] = row

    def _repair_and_scan(self) -> None:
        if not self.path.exists():
            return
        good: list[bytes] = []
        bad: list[tuple[int, bytes]] = []
        with open(self.path, "rb") as fh:
            lines = fh.readlines()
        for lineno, raw in enumerate(lines, 1):
            try:
                row = json.loads(raw) if raw.endswith(b"\n") else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                row = None
            if row is None and not raw.strip():
                continue
            if row is None:
                bad.append((lineno, raw))
            else:
                good.append(raw)
                self._add(row)
        if not bad:
            return
        torn_tail = len(bad) == 1 and bad[0][0] == len(lines) and not bad[0][1].endswith(b"\n")
        if torn_tail:
            with open(self.path, "r+b") as fh:
                fh.truncate(sum(map(len, good)))
            return
        from stepdpo.progress import log

        damaged = self.path.with_name(self.path.name + ".damaged")
        with open(damaged, "ab") as fh:
            for _, raw in bad:
                fh.write(raw if raw.endswith(b"\n") else raw + b"\n")
        where = ", ".join(str(n) for n, _ in bad[:10]) + (" ..." if len(bad) > 10 else "")
        log.warning(
            f"{self.path}: {len(bad)} unreadable line(s) (line {where}) moved to {damaged}; the work they held is redone"
        )
        atomic_write_text(self.path, b"".join(good).decode("utf-8"))

    def write(self, record: Any) -> None:
        row = _to_dict(record)
        with saving(self.path, written=lambda: self.path.stat().st_size):
            self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        self._add(row)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a write already failed (disk full) and was reported
            self._fh.close()

    def __enter__(self) -> AppendWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class OutputLocked(RuntimeError):
    """Another process is writing the same output."""


@contextlib.contextmanager
def exclusive(path: str | os.PathLike) -> Iterator[None]:
    """Hold the advisory lock of an output (``PATH.lock``, with the holder's process id in it) for
    the block, so that a second copy of a stage or a training run on the same output fails at once
    instead of interleaving its writes with the first's."""
    import fcntl

    lock = Path(str(path) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fh = open(lock, "a+", encoding="utf-8")  # noqa: SIM115  (held for the block)
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise OutputLocked(
                f"{path} is being written by process {holder} (lock {lock}); wait for it to finish or stop it"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield
    finally:
        fh.close()
