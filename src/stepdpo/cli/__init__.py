"""The ``stepdpo`` command line: one thin command per stage of the paper's pipeline.

Every command's options are the fields of one documented dataclass (:mod:`stepdpo.options`), so
``--help``, a YAML file given with ``--config`` and the Python API list the same options with the
same defaults. A bad option or input is one clear line and exit code 2, before any model loads.
"""

from __future__ import annotations

import sys
from dataclasses import asdict

import typer
from rich.console import Console

from stepdpo.options import OptionError, command
from stepdpo.recordio import DataError, DiskFull, OutputLocked, is_disk_full

app = typer.Typer(
    add_completion=True,  # --install-completion, --show-completion (bash, zsh, fish, PowerShell)
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Step-DPO: step-wise preference data and training for math reasoning (Lai et al., 2024).",
)
console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        import torch
        import transformers

        typer.echo(f"stepdpo {version('stepdpo')} (torch {torch.__version__}, transformers {transformers.__version__})")
        raise typer.Exit()


@app.callback()
def _output(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Debug messages too."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Warnings and errors only; no progress display."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_version, help="The version, and exit."),
    progress_every: float = typer.Option(
        30.0,
        "--progress-every",
        envvar="STEPDPO_PROGRESS_SECONDS",
        min=0.1,
        help="Off a terminal (a file, CI): seconds between progress lines (the first comes after 3 s).",
    ),
) -> None:
    """How messages and progress look: one live display (each stage, training and evaluation with its
    items, rate and ETA) and a line per finished part, on stderr."""
    import logging

    from rich.logging import RichHandler
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from transformers.utils import logging as hf_logging

    from stepdpo.progress import log, log_progress_every, set_display

    hf_logging.set_verbosity_error()  # library chatter (weight loading bars, notices) is not the user's business
    hf_logging.disable_progress_bar()
    log.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    log.handlers[:] = [RichHandler(console=console, show_time=False, show_path=False, markup=False)]
    log.propagate = False
    if quiet:
        return
    if not console.is_terminal:  # a file, CI, a notebook: no live display draws there; log lines instead
        log_progress_every(progress_every)
        ctx.call_on_close(lambda: log_progress_every(None))
        return
    display = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    display.start()
    set_display(display)

    def stop() -> None:
        set_display(None)
        display.stop()

    ctx.call_on_close(stop)


def _say(message: str) -> None:
    """A plain line on stderr: no wrapping (paths stay whole) and no markup (data may hold brackets)."""
    console.print(message, soft_wrap=True, markup=False, highlight=False)


def _fail(message: str) -> None:
    _say(f"error: {message}")
    raise typer.Exit(2)


def _clear_errors(job) -> None:
    try:
        job()
    except (DataError, OptionError, OutputLocked, FileNotFoundError, ValueError, ImportError) as e:
        _fail(str(e))
    except (NotADirectoryError, FileExistsError, IsADirectoryError, PermissionError) as e:
        _fail(f"cannot write {e.filename}: {e.strerror}")
    except OSError as e:
        if not is_disk_full(e):
            raise
        # not a usage error: the same command completes once there is space
        if isinstance(e, DiskFull):  # already names the file and what to do
            _say(f"error: {e}")
        else:
            _say(f"error: no space left writing {e.filename or 'an output'} ({e.strerror}); free some space and rerun")
        raise typer.Exit(1) from None


def cli_command(cls: type, name: str, help: str, **kw) -> object:
    """Register the decorated function as command ``name`` with the options of ``cls``; data and
    option problems become one clear line and exit code 2, not a traceback."""

    def wrap(fn):
        command(app, cls, fn, name=name, help=help, guard=_clear_errors, **kw)
        return fn

    return wrap


def _shard(spec: str | None):
    from stepdpo.pipeline.runner import parse_shard

    return parse_shard(spec)


def _generator(cfg):
    from stepdpo.pipeline.executors import make_generator

    return make_generator(cfg)


def _executor(cfg):
    from stepdpo.pipeline.executors import make_executor

    return make_executor(cfg)


def _sampling_part(cfg, cls):
    """The stage config inside a command config (its own fields only)."""
    return cls(**{k: v for k, v in asdict(cfg).items() if k in cls.__dataclass_fields__})


# the commands, registered on ``app`` as their modules are imported
from stepdpo.cli import data, stages, training  # noqa: E402,F401


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
