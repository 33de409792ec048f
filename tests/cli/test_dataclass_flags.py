"""Flags made from a settings dataclass: names, help text, types, and which values reach the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from typer.testing import CliRunner

from gcr.cli.dataclass_flags import dataclass_flags, fixed_param, flag_overrides, with_signature


@dataclass
class Settings:
    teacher_url: str = field(default="http://127.0.0.1:8000/v1", metadata={"help": "Teacher server."})
    concurrency: int = field(default=8, metadata={"help": "Requests at once."})
    checks: list[str] = field(default_factory=lambda: ["order"], metadata={"help": "Checks to run."})
    resume: bool = field(default=True, metadata={"help": "Continue where it stopped."})
    limit: int | None = field(default=None, metadata={"help": "Most items."})


def _app(seen: dict[str, Any], names: tuple[str, ...] | None = None) -> typer.Typer:
    app = typer.Typer()

    def command(*, name: str, **flags: Any) -> None:
        seen.update(name=name, **flag_overrides(Settings, flags))

    fixed = [fixed_param("name", Annotated[str, typer.Argument(help="A name.")])]
    app.command()(with_signature(command, fixed, dataclass_flags(Settings, names)))
    return app


def test_only_given_flags_become_overrides_with_their_types() -> None:
    seen: dict[str, Any] = {}
    result = CliRunner().invoke(
        _app(seen), ["run1", "--concurrency", "3", "--checks", "order,agree", "--checks", "x", "--no-resume"]
    )
    assert result.exit_code == 0, result.output
    # Flags not given are absent (the config file's values stay); lists split on commas.
    assert seen == {"name": "run1", "concurrency": 3, "checks": ["order", "agree", "x"], "resume": False}


def test_a_bad_value_is_refused_by_the_flag_type() -> None:
    seen: dict[str, Any] = {}
    result = CliRunner().invoke(_app(seen), ["run1", "--concurrency", "many"])
    assert result.exit_code == 2 and not seen


def test_help_comes_from_the_field_metadata_with_the_default() -> None:
    result = CliRunner().invoke(_app({}), ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--teacher-url" in result.output
    assert "Teacher server. (default: http://127.0.0.1:8000/v1)" in result.output
    assert "Checks to run. (default: order) Repeat the flag or separate values with commas." in result.output
    assert "--no-resume" in result.output and "--limit" in result.output


def test_a_subset_of_fields_makes_a_subset_of_flags() -> None:
    seen: dict[str, Any] = {}
    app = _app(seen, names=("concurrency",))
    assert CliRunner().invoke(app, ["run1", "--teacher-url", "http://x"]).exit_code == 2
    assert CliRunner().invoke(app, ["run1", "--concurrency", "2"]).exit_code == 0
    assert seen == {"name": "run1", "concurrency": 2}
