"""Options declared once: a documented dataclass per command, read from the command line, a YAML file
or Python alike (as TRL's ``DPOConfig`` is).

A field is declared with :func:`option`: its default, its help, and the values it allows
(``choices``, ``min``, ``max``). :func:`check` enforces them, so a bad value is refused before any
model loads, with the option named. :func:`load_yaml` is the one reader of config files: it refuses
unknown keys and values of the wrong type, naming the file and the key. :func:`command` turns a
dataclass into a typer command whose options are its fields.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any


class OptionError(ValueError):
    """A value an option does not allow, or a config file that cannot be read."""


def option(
    default: Any = None,
    help: str = "",
    *,
    choices: tuple | None = None,
    min: float | None = None,
    max: float | None = None,
    cli: str | None = None,
    hidden: bool = False,
    required: bool = False,
) -> Any:
    """A dataclass field with its help and the values it allows; ``cli`` overrides the flag name
    (``"--in"``); ``required``: an empty value is refused; a list default is copied per instance."""
    meta = {
        "help": help,
        "choices": choices,
        "min": min,
        "max": max,
        "cli": cli,
        "hidden": hidden,
        "required": required,
    }
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def fields_of(cls: type) -> list[dataclasses.Field]:
    """The options of a config class, in declaration order (nested sections left out)."""
    hints = typing.get_type_hints(cls)
    return [f for f in dataclasses.fields(cls) if not dataclasses.is_dataclass(_base(hints[f.name]))]


def _base(tp: Any) -> Any:
    """``int`` for ``int | None``; the type itself otherwise."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` as type ``tp``, or an OptionError naming ``where``."""
    optional = type(None) in typing.get_args(tp)
    base = _base(tp)
    if optional and isinstance(value, str) and value.strip().lower() in ("none", "null"):
        value = None  # how the command line and YAML say "none" for an optional option
    if value is None:
        if optional:
            return None
        raise OptionError(f"{where}: a value is required")
    origin = typing.get_origin(base)
    if origin is list:
        (item,) = typing.get_args(base) or (str,)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise OptionError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, item, where) for v in value]
    if base is bool:
        if isinstance(value, bool):
            return value
        raise OptionError(f"{where}: expected true or false, got {value!r}")
    if base in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise OptionError(f"{where}: expected a number, got {value!r}")
        try:
            number = base(value) if base is float else int(str(value)) if isinstance(value, str) else value
        except ValueError:
            raise OptionError(
                f"{where}: expected {'an integer' if base is int else 'a number'}, got {value!r}"
            ) from None
        if base is int and isinstance(number, float):
            if not number.is_integer():
                raise OptionError(f"{where}: expected an integer, got {value!r}")
            number = int(number)
        return number
    if base is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise OptionError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def check(cfg: Any, keys: bool = False) -> Any:
    """Validate every option of ``cfg`` against its declaration; returns ``cfg``. Errors name the
    option by its flag (``--max-new-tokens``), or with ``keys`` by its config key."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            try:
                check(value, keys)
            except OptionError as e:
                raise OptionError(f"section '{f.name}': {e}") from None
            continue
        where = f"'{f.name}'" if keys else flag(f)
        if f.metadata.get("required") and value in (None, "", []):
            raise OptionError(f"{where} is required")
        value = _coerce(value, hints[f.name], where)
        setattr(cfg, f.name, value)
        meta = f.metadata
        items = value if isinstance(value, list) else [value]
        for v in items:
            if v is None:
                continue
            if meta.get("choices") and v not in meta["choices"]:
                raise OptionError(f"{where}: {v!r} is not one of {', '.join(map(str, meta['choices']))}")
            if meta.get("min") is not None and v < meta["min"]:
                raise OptionError(f"{where}: {v!r} is below its minimum {meta['min']}")
            if meta.get("max") is not None and v > meta["max"]:
                raise OptionError(f"{where}: {v!r} is above its maximum {meta['max']}")
    return cfg


def flag(f: dataclasses.Field) -> str:
    """The command-line flag of a field (``--max-new-tokens``)."""
    return f.metadata.get("cli") or "--" + f.name.replace("_", "-")


def build(cls: type, values: dict[str, Any], where: str = "", keys: bool | None = None) -> Any:
    """``cls`` from a mapping of option values (nested sections included), checked; unknown keys and
    wrong types are errors that name ``where`` and the key."""
    hints = typing.get_type_hints(cls)
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    prefix = f"{where}: " if where else ""
    if unknown:
        raise OptionError(f"{prefix}unknown option(s) {', '.join(unknown)}; known: {', '.join(names)}")
    kwargs = {}
    for key, value in values.items():
        tp = _base(hints[key])
        if dataclasses.is_dataclass(tp):
            if value is not None and not isinstance(value, dict):
                raise OptionError(f"{prefix}'{key}' must be a mapping of options, got {value!r}")
            try:
                kwargs[key] = build(tp, value or {}, keys=True if keys is None else keys)
            except OptionError as e:
                raise OptionError(f"{prefix}section '{key}': {e}") from None
        else:
            use_keys = bool(where) if keys is None else keys
            kwargs[key] = _coerce(value, hints[key], f"{prefix}'{key}'" if use_keys else flag(names[key]))
    cfg = cls(**kwargs)
    try:
        return check(cfg, keys=bool(where) if keys is None else keys)
    except OptionError as e:
        raise OptionError(f"{prefix}{e}") from None


def load_yaml(path: str | Path, cls: type, overrides: dict[str, Any] | None = None) -> Any:
    """The one reader of config files: ``cls`` from a YAML mapping, then ``overrides`` on top."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise OptionError(f"{path}: cannot read the config file ({e.__class__.__name__}: {e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise OptionError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise OptionError(f"{path}: expected a mapping of options, got a {type(data).__name__}")
    return build(cls, {**data, **(overrides or {})}, str(path))


_TYPE_NAMES = {int: "INTEGER", float: "FLOAT", str: "TEXT", Path: "PATH"}


def metavar(f: dataclasses.Field, tp: Any) -> str:
    """How ``--help`` shows an option's values: its type (INTEGER, FLOAT, TEXT), its allowed values
    ([a|b|c]), a comma-separated list (FLOAT,...), and ``|none`` where it may be left unset."""
    base = _base(tp)
    if f.metadata.get("choices"):
        name = "[" + "|".join(map(str, f.metadata["choices"])) + "]"
    elif typing.get_origin(base) is list:
        (item,) = typing.get_args(base) or (str,)
        name = _TYPE_NAMES.get(item, "TEXT") + ",..."
    else:
        name = _TYPE_NAMES.get(base, "TEXT")
    optional = type(None) in typing.get_args(tp) and not f.metadata.get("choices")
    return name + ("|none" if optional and base in (int, float) else "")


def defaults_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
    else:
        return ""
    if isinstance(value, list):
        value = ",".join(map(str, value))
    # escaped: typer renders help as rich markup, which would take "[default: ...]" for a style tag
    return f" \\[default: {value}]" if value not in (None, "") else ""


def check_input(inp: Any) -> None:
    """Refuse an input file (``--in``) that does not exist, before any work starts."""
    if isinstance(inp, str) and inp and not Path(inp).expanduser().exists():
        raise OptionError(f"{inp}: no such file (the input)")


def check_output(out: Any) -> None:
    """Refuse an output path that cannot be written (a file where a folder must be, a folder
    without write permission) before any work starts."""
    if not isinstance(out, str) or not out:
        return
    path = Path(out).expanduser()
    for parent in (path, *path.parents):
        if not parent.exists():
            continue
        if parent != path and not parent.is_dir():
            raise OptionError(f"--out {out}: {parent} is a file, not a folder")
        folder = parent if parent.is_dir() else parent.parent
        if not os.access(folder, os.W_OK):
            raise OptionError(f"--out {out}: no permission to write in {folder}")
        return


def command(
    app: Any,
    cls: type,
    run: Callable[..., None],
    *,
    name: str,
    help: str,
    arguments: tuple[str, ...] = (),
    config_file: bool = True,
    extra: dict[str, Any] | None = None,
    presets: dict[str, dict[str, Any]] | None = None,
    guard: Callable[[Callable[[], None]], None] = lambda job: job(),
) -> None:
    """Register a typer command whose options are the fields of ``cls``.

    Every option defaults to "not given", so a value from ``--config FILE`` is overridden only by an
    option given on the command line; the help shows the field's real default. ``arguments`` are
    fields taken as positional arguments. ``extra`` adds command-only parameters (name -> ``(type,
    typer parameter)``), passed to ``run`` as keywords. ``presets`` are named configs (``--preset
    NAME``, ``--quick`` for one named quick) that options given on the command line override.
    ``guard`` runs the whole command (reading the options included), e.g. to turn errors into messages.
    """
    import typer

    params = []
    hints = typing.get_type_hints(cls)
    for f in fields_of(cls):
        if f.metadata.get("hidden"):
            continue
        base = _base(hints[f.name])
        text = (f.metadata.get("help") or "") + defaults_text(f)
        if f.name in arguments:
            ann = list[str] if typing.get_origin(base) is list else str
            default = typer.Argument(..., help=text, show_default=False)
        elif base is bool:
            ann = bool | None
            long = flag(f)
            default = typer.Option(None, f"{long}/--no-{long[2:]}", help=text, show_default=False, metavar="SWITCH")
        else:
            ann = str | None  # read by check(), whose errors name the option; the help shows the real type
            default = typer.Option(None, flag(f), help=text, show_default=False, metavar=metavar(f, hints[f.name]))
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann))
    if config_file:
        params.append(
            inspect.Parameter(
                "config",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Path | None,
                default=typer.Option(None, help="A YAML file of these options."),
            )
        )
    if presets:
        params.append(
            inspect.Parameter(
                "preset",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=str | None,
                default=typer.Option(None, help=f"A named config: {', '.join(presets)}."),
            )
        )
        if "quick" in presets:
            params.append(
                inspect.Parameter(
                    "quick",
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=bool,
                    default=typer.Option(False, help="The quick preset (--preset quick)."),
                )
            )
    for pname, (ann, default) in (extra or {}).items():
        params.append(inspect.Parameter(pname, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=default))

    def execute(given: dict[str, Any]) -> None:
        config = given.pop("config", None)
        preset = given.pop("preset", None)
        if given.pop("quick", False):
            preset = "quick"
        more = {k: given.pop(k) for k in list(given) if k in (extra or {})}
        values = {k: v for k, v in given.items() if v is not None}
        if preset is not None:
            if preset not in (presets or {}):
                raise OptionError(f"--preset: {preset!r} is not one of {', '.join(presets or {})}")
            values = {**presets[preset], **values}  # type: ignore[index]
        cfg = load_yaml(config, cls, values) if config else build(cls, values)
        check_output(getattr(cfg, "out", None))
        check_input(getattr(cfg, "inp", None))
        run(cfg, **more)

    def body(**given: Any) -> None:
        guard(lambda: execute(given))

    body.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    body.__doc__ = help
    body.__name__ = name.replace("-", "_")
    app.command(name=name, help=help)(body)
