"""Options declared once: every command's --help, its dataclass and the YAML files agree, and a bad
value is refused at parse time with the option named."""

import dataclasses
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from stepdpo.cli import app
from stepdpo.commands import (
    BuildCommand,
    CollectCommand,
    ConvertCommand,
    EvalCommand,
    InspectCommand,
    LocateCommand,
    MergeCommand,
    PushCommand,
    RectifyCommand,
    ReviewCommand,
    SFTCommand,
    ValidateCommand,
)
from stepdpo.experiments.ablate import AblateConfig
from stepdpo.experiments.common import DemoConfig
from stepdpo.experiments.iterate import IterateConfig
from stepdpo.experiments.judge_eval import EvalJudgeConfig
from stepdpo.options import OptionError, defaults_text, fields_of, flag, load_yaml
from stepdpo.pipeline.run import PipelineConfig
from stepdpo.training.trainer import TrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
COMMANDS = {
    "validate": ValidateCommand,
    "inspect": InspectCommand,
    "sft": SFTCommand,
    "eval": EvalCommand,
    "collect": CollectCommand,
    "locate": LocateCommand,
    "rectify": RectifyCommand,
    "build": BuildCommand,
    "merge": MergeCommand,
    "pipeline": PipelineConfig,
    "train": TrainConfig,
    "demo": DemoConfig,
    "ablate": AblateConfig,
    "iterate": IterateConfig,
    "eval-judge": EvalJudgeConfig,
    "review": ReviewCommand,
    "convert": ConvertCommand,
    "push": PushCommand,
}
COMMAND_ONLY = {"config", "preset", "quick", "start", "stop", "shard"}
runner = CliRunner()


def _click(name):
    return typer.main.get_command(app).commands[name]


def test_every_command_is_declared_by_one_dataclass():
    assert set(typer.main.get_command(app).commands) == set(COMMANDS)
    for name, cls in COMMANDS.items():
        params = {p.name: p for p in _click(name).params}
        fields = {f.name: f for f in fields_of(cls) if not f.metadata.get("hidden")}  # set by the run, not a flag
        assert set(params) - COMMAND_ONLY == set(fields) - COMMAND_ONLY, name
        assert set(fields) <= set(params), name
        for fname, f in fields.items():
            p = params[fname]
            if p.param_type_name == "option":
                assert flag(f) in p.opts, (name, fname)
                assert defaults_text(f) in (p.help or ""), (name, fname)  # the dataclass's default, shown
            assert (f.metadata.get("help") or "")[:40] in (p.help or ""), (name, fname)


@pytest.mark.parametrize("name", ["train", "collect", "eval"])
def test_help_as_printed_shows_every_default(name, monkeypatch):
    """The rendered --help, not only the help string: rich markup must not swallow "[default: ...]"."""
    monkeypatch.setenv("COLUMNS", "400")
    shown = runner.invoke(app, [name, "--help"]).output
    for f in fields_of(COMMANDS[name]):
        text = defaults_text(f).replace("\\", "").strip()
        if text and not f.metadata.get("hidden"):
            assert any(flag(f) in line and text in line for line in shown.splitlines()), (name, f.name, text)
    assert "[default: 5e-07]" in shown or name != "train"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_config_file_reads_into_its_dataclass(path):
    cls = PipelineConfig if path.name.startswith("pipeline") else TrainConfig
    cfg = load_yaml(path, cls)
    assert dataclasses.is_dataclass(cfg)


def test_yaml_errors_name_the_file_and_key(tmp_path):
    f = tmp_path / "c.yaml"
    for text, needle in [
        ("beta: high\n", "'beta': expected a number"),
        ("lossy: 1\n", "unknown option(s) lossy"),
        ("- a\n", "expected a mapping"),
        ("beta: [\n", "not valid YAML"),
        ("global_batch: 0\n", "'global_batch': 0 is below its minimum 1"),
    ]:
        f.write_text(text)
        with pytest.raises(OptionError, match="c.yaml: "):
            load_yaml(f, TrainConfig)
        try:
            load_yaml(f, TrainConfig)
        except OptionError as e:
            assert needle in str(e), (text, str(e))


@pytest.mark.parametrize(
    "args,needle",
    [
        (["train", "--data", "x.jsonl", "--global-batch", "0"], "--global-batch: 0 is below its minimum 1"),
        (["train", "--data", "x.jsonl", "--dtype", "fp64"], "--dtype: 'fp64' is not one of"),
        (["train", "--data", "x.jsonl", "--epochs", "0"], "--epochs: 0.0 is below its minimum"),
        (["train", "--data", "x.jsonl", "--pair-format", "xyz"], "--pair-format: 'xyz' is not one of step, dpo"),
        (["train", "--data", "x.jsonl", "--lr", "fast"], "--lr: expected a number, got 'fast'"),
        (["collect", "--limit", "0"], "--limit: 0 is below its minimum 1"),
        (["collect", "--temperature", "-1"], "--temperature: -1.0 is below its minimum 0.0"),
        (["eval", "--n", "0"], "--n: 0 is below its minimum 1"),
        (["eval", "--batch-size", "0"], "--batch-size: 0 is below its minimum 1"),
        (["eval", "--max-new-tokens", "-5"], "--max-new-tokens: -5 is below its minimum 1"),
        (["locate", "--judge", "foo"], "--judge: 'foo' is not one of rollout, verifier, llm"),
        (["build", "--max-per-error", "-1"], "--max-per-error: -1 is below its minimum 1"),
        (["validate", "x.jsonl", "--kind", "bogus"], "--kind: 'bogus' is not one of"),
        (["demo", "--preset", "huge"], "--preset: 'huge' is not one of quick"),
        (["sft"], "--out is required"),
    ],
)
def test_bad_options_are_refused_before_any_work(args, needle):
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output


def test_a_command_line_option_overrides_the_config_file(tmp_path, monkeypatch):
    seen = {}
    import stepdpo.training.trainer as trainer

    monkeypatch.setattr(trainer, "train", lambda cfg: seen.setdefault("cfg", cfg) and {})
    f = tmp_path / "t.yaml"
    f.write_text("data: a.jsonl\nbeta: 0.1\nlr: 1.0e-6\n")
    res = runner.invoke(app, ["train", "--config", str(f), "--beta", "0.3"])
    assert res.exit_code == 0, res.output
    assert (seen["cfg"].beta, seen["cfg"].lr, seen["cfg"].data) == (0.3, 1e-6, "a.jsonl")


def test_presets_are_named_configs(monkeypatch):
    seen = {}
    import stepdpo.experiments.demo as demo

    def fake(cfg):
        seen["cfg"] = cfg
        raise ValueError("stop here")

    monkeypatch.setattr(demo, "run_demo", fake)
    runner.invoke(app, ["demo", "--quick", "--collect-problems", "80"])
    st = seen["cfg"].setting
    assert seen["cfg"].seeds == [0] and st["eval_problems"] == 60 and st["collect_problems"] == 80


def test_an_optional_option_takes_none_from_the_command_line_and_yaml(tmp_path):
    from stepdpo.options import build

    assert build(EvalJudgeConfig, {"limit": "none"}).limit is None
    assert build(EvalJudgeConfig, {"limit": "12"}).limit == 12
    assert EvalJudgeConfig().limit is None  # a file is read whole unless --limit is given
    (tmp_path / "c.yaml").write_text("limit: none\n")
    assert load_yaml(tmp_path / "c.yaml", EvalJudgeConfig).limit is None
    with pytest.raises(OptionError, match="--lr"):
        build(TrainConfig, {"lr": "none"})


def test_help_shows_each_options_type_and_the_version_is_printed():
    out = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    line = {
        name: next(x for x in out.splitlines() if f" {name} " in x)
        for name in ("--lr", "--global-batch", "--loss", "--prefix-sharing", "--val-sets")
    }
    assert "FLOAT" in line["--lr"] and "INTEGER" in line["--global-batch"] and "SWITCH" in line["--prefix-sharing"]
    assert "[sigmoid|robust|hinge|ipo]" in line["--loss"] and "TEXT,..." in line["--val-sets"]
    assert "<str>" not in out
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.startswith("stepdpo 0.")
