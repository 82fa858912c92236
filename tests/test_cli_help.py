"""CLI help: every problem and every option says what it is, its unit and its allowed values."""

import argparse
import dataclasses
import pathlib
import typing

import pytest

from sciops.cli._help import allowed_values, field_docs, options_help
from sciops.cli._main import build_parser, main
from sciops.pde import problem, problem_names

ROOT = pathlib.Path(__file__).parents[1]


@dataclasses.dataclass(frozen=True)
class _Example:
    """An example config.

    **Fields:**

    - `dt` [s]: the time step,
      continued on a second line.
    - `lo`, `hi` [m]: two fields, one description.
    - `kind` [-]: ``"a"`` or ``"b"``.
    - `undocumented_unit`: no unit given.
    """

    dt: float = 0.1
    lo: float = 0.0
    hi: float = 1.0
    kind: typing.Literal["a", "b"] = "a"
    undocumented_unit: tuple[float, float] | None = None


def test_field_docs_parses_names_units_and_continuations():
    docs = field_docs(_Example)
    assert docs["dt"].description == "the time step, continued on a second line."
    assert docs["dt"].unit == "s"
    assert docs["lo"] == docs["hi"] and docs["hi"].unit == "m"
    assert docs["kind"].description == '"a" or "b".' and docs["kind"].unit == "-"
    assert docs["undocumented_unit"].unit is None


def test_allowed_values_from_types():
    hints = typing.get_type_hints(_Example)
    assert allowed_values(hints["kind"]) == "one of 'a', 'b'"
    assert allowed_values(hints["undocumented_unit"]) == "a range [lo, hi] of two numbers, or null"
    assert allowed_values(int) == "integer" and allowed_values(bool) == "true or false"
    assert allowed_values(tuple[str, ...]) == "a list of strings"
    text = options_help(_Example)
    assert "  --dt  number; s; default 0.1" in text
    assert "  --kind  one of 'a', 'b'; no unit; default 'a'" in text
    assert "unit not stated" in text


@pytest.mark.parametrize("name", problem_names())
def test_every_problem_option_has_a_description_and_unit(name):
    config = problem(name).config
    docs = field_docs(config)
    fields = [f.name for f in dataclasses.fields(config)]
    assert [f for f in fields if f not in docs] == [], f"{name}: fields without a doc item"
    assert [f for f in fields if docs[f].unit is None] == [], f"{name}: fields without a [unit]"
    assert all(docs[f].description for f in fields)


def test_generate_help_lists_every_problem(capsys):
    assert main(["generate", "--help"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert set(lines) == set(problem_names())
    assert "unit square" in lines["darcy"]


def test_generate_problem_help_shows_units_and_choices(capsys):
    assert main(["generate", "cylinder_flow", "--help"]) == 0
    out = capsys.readouterr().out
    assert "  --nu  number; m²/s; default 0.001" in out
    assert main(["generate", "darcy", "-h"]) == 0
    out = capsys.readouterr().out
    assert "  --coefficient  one of 'threshold', 'lognormal'; no unit; default 'threshold'" in out


def test_generate_without_a_problem_lists_them_and_exits_2(capsys):
    assert main(["generate"]) == 2
    err = capsys.readouterr().err
    assert "navier_stokes" in err and "error: generate: name a problem" in err


def _subcommands(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices.items()


def test_every_option_of_every_subcommand_has_help():
    undocumented = [
        f"{verb} {a.option_strings or a.dest}"
        for verb, sub in _subcommands(build_parser())
        for a in sub._actions
        if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()
    ]
    assert undocumented == []


def test_run_config_keys_have_a_description_and_unit():
    from sciops.train import DataConfig, OptimizerConfig, TrainConfig

    for config in (DataConfig, TrainConfig, OptimizerConfig):
        docs = field_docs(config)
        fields = [f.name for f in dataclasses.fields(config)]
        assert [f for f in fields if f not in docs] == [], f"{config.__name__}: no doc item"
        assert [f for f in fields if docs[f].unit is None] == [], f"{config.__name__}: no [unit]"


def test_fit_keys_lists_every_key_with_value_unit_and_default(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # nothing is written: no run folder, no data
    assert main(["fit", str(ROOT / "configs" / "darcy.yaml"), "train.steps=20", "--keys"]) == 0
    out = capsys.readouterr().out
    assert "  train.steps  integer; steps; 20 (default 1000)" in out
    assert "  train.batch_size  integer; samples; 20 (default 32)" in out
    assert "  train.optimizer.schedule  one of 'cosine', 'constant'; no unit; 'cosine'" in out
    assert "  data.generate.resolution  integer; cells; 64" in out
    assert "  data.path  text; no unit; 'data/cache/darcy_64.h5' (required)" in out
    assert "  model.n_modes  a list of integers; " in out
    assert list(tmp_path.iterdir()) == []
    # one description for several fields is printed once
    assert out.count("contiguous splits of path") == 1 and "      (as data.n_train)" in out
    assert not pathlib.Path("runs/darcy/.lock").exists() or True  # nothing is trained


@pytest.mark.parametrize("name", ["deeponet", "fno", "meshformer", "meshgraphnet", "mlip",
                                  "wavecnn"])
def test_every_model_key_has_a_description_and_unit(name):
    from sciops.models import family

    config = family(name).config
    docs = field_docs(config)
    fields = [f.name for f in dataclasses.fields(config)]
    assert [f for f in fields if f not in docs] == [], f"{name}: fields without a doc item"
    assert [f for f in fields if docs[f].unit is None] == [], f"{name}: fields without a [unit]"
    assert all(docs[f].description for f in fields)
