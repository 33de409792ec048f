"""``gcr train parrot ...``: turn preference pairs into a reasoning critic's training data.

::

    gcr train parrot import HPD.json --layout hpd --out prefs/
    gcr train parrot validate prefs/
    gcr train parrot run prefs/ --workdir work/ --teacher-url http://127.0.0.1:8000/v1

``run`` is ``anchor`` → ``filter`` → ``project`` → ``build-dataset``; each phase
also runs alone and resumes where it stopped. The phase flags are made from
:class:`~gcr.training.parrot.pipeline.ParrotSettings` (:mod:`gcr.cli.dataclass_flags`),
so a flag, a YAML key and a Python keyword are the same setting with the same
help text. ``gcr train sft`` (:mod:`gcr.cli.train_sft`) trains a critic on the
dataset this writes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from gcr.cli.console import console, plain
from gcr.cli.dataclass_flags import dataclass_flags, fixed_param, flag_overrides, with_signature
from gcr.cli.train_view import kv_table, print_json, print_problems, progress_bar
from gcr.training.parrot.pipeline import ParrotSettings

parrot_app = typer.Typer(
    name="parrot",
    help="PARROT: turn preference pairs into a reasoning critic's training data (anchor, filter, project).",
    no_args_is_help=True,
)


@parrot_app.command("import")
def import_command(
    source: Path = typer.Argument(..., help="Parquet/JSONL/JSON file, or a folder of them."),
    layout: str = typer.Option(
        ..., "--layout", help="mmrb2, genai-bench-t2i, genai-bench-edit, editreward-bench, hpd or editreward."
    ),
    out: Path = typer.Option(..., "--out", help="Folder of the new preference set."),
    task: str | None = typer.Option(None, "--task", help="t2i or edit (MMRB2 only; default: inferred)."),
    origin: str | None = typer.Option(
        None, "--origin", help="Origin recorded on each item (default: the layout)."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Stop after this many items."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Convert a downloaded preference dataset into gcr's preference format (broken rows are reported)."""
    from gcr.errors import DatasetError
    from gcr.training.parrot.importers import import_preferences

    report = import_preferences(source, layout, out, task=task, origin=origin, limit=limit)
    data = report.to_dict()
    if json_output:
        print_json(data)
    else:
        console.print(
            kv_table(
                f"import {source} ({layout})",
                [
                    ("rows read", report.total),
                    ("items written", report.written),
                    ("rows skipped", len(report.problems)),
                    ("labels", ", ".join(f"{k} {v}" for k, v in sorted(report.labels.items())) or "-"),
                    ("preference file", report.path),
                ],
            )
        )
        print_problems(data["problems"])
    if report.written == 0:
        raise DatasetError(f"no usable rows in {source} for layout {layout!r}")


@parrot_app.command("validate")
def validate_command(
    path: Path = typer.Argument(..., help="A preference set folder or its preferences.jsonl."),
    images: bool = typer.Option(True, "--images/--no-images", help="Open and decode every image."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check every row of a preference set; exit code 1 when any row is broken."""
    from gcr.training.parrot.data import validate_preferences

    report = validate_preferences(path, check_images=images)
    data = report.to_dict()
    if json_output:
        print_json(data)
    else:
        console.print(
            kv_table(
                f"validate {report.path}",
                [
                    ("rows", report.total),
                    ("usable", report.valid),
                    ("broken", report.total - report.valid),
                    ("labels", ", ".join(f"{k} {v}" for k, v in sorted(report.labels.items())) or "-"),
                    ("tasks", ", ".join(f"{k} {v}" for k, v in sorted(report.tasks.items())) or "-"),
                ],
            )
        )
        print_problems(data["problems"])
    if not report.ok:
        raise typer.Exit(1)


# -- phases ---------------------------------------------------------------------------------

_TEACHER = (
    "teacher_url",
    "teacher_model",
    "api_key_env",
    "concurrency",
    "timeout",
    "max_retries",
    "max_pixels",
    "teacher_temperature",
    "teacher_max_tokens",
    "templates_dir",
)
_PREDICTOR = (
    "predictor_url",
    "predictor_model",
    "teacher_url",
    "teacher_model",
    "api_key_env",
    "concurrency",
    "timeout",
    "max_retries",
    "max_pixels",
    "predictor_temperature",
    "predictor_max_tokens",
    "checks",
    "tie_tolerance",
    "templates_dir",
)
_DATASET = ("pairwise_fraction", "val_fraction", "split_salt", "critic_templates_dir")

_CONFIG = Annotated[Path | None, typer.Option("--config", help="YAML file of PARROT settings (flags win).")]
_WORKDIR = Annotated[Path, typer.Option("--workdir", help="PARROT work folder (one per preference set).")]
_JSON = Annotated[bool, typer.Option("--json", help="Print the phase summary as JSON.")]


def _settings(config: Path | None, values: dict[str, Any]) -> ParrotSettings:
    return ParrotSettings.from_yaml(config, **flag_overrides(ParrotSettings, values))


def _show(title: str, data: dict[str, Any], json_output: bool) -> None:
    if json_output:
        print_json(data)
        return
    scalars = [(k, v) for k, v in data.items() if isinstance(v, (int, float, str)) or v is None]
    console.print(kv_table(title, scalars))
    for key in ("failed_keys", "dropped_items", "violation_items"):
        items = data.get(key)
        if items:
            lines = [f"{k}: {v}" for k, v in items.items()] if isinstance(items, dict) else list(items)
            console.print(plain((key.replace("_", " "), "bold")))
            print_problems(lines, limit=10)


def _pipeline(workdir: Path, settings: ParrotSettings, preferences: Path | None = None):
    from gcr.training.parrot.pipeline import ParrotPipeline

    if preferences is not None:
        return ParrotPipeline.create(workdir, preferences, settings)
    return ParrotPipeline.open(workdir, settings)


async def _closing(pipeline: Any, coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        return await coro
    finally:
        await pipeline.aclose()


def _anchor(
    *, preferences: Path, workdir: Path, config: Path | None = None, json_output: bool = False, **flags: Any
) -> None:
    """Phase 1: the teacher writes a rationale for each known preference (resumable)."""
    pipeline = _pipeline(workdir, _settings(config, flags), preferences)
    with progress_bar("anchoring", not json_output) as progress:
        data = asyncio.run(_closing(pipeline, pipeline.anchor(progress)))
    _show("anchor", data, json_output)


def _filter(*, workdir: Path, config: Path | None = None, json_output: bool = False, **flags: Any) -> None:
    """Phase 2: keep only rationales that re-predict the preference without the label."""
    pipeline = _pipeline(workdir, _settings(config, flags))
    with progress_bar("predicting", not json_output) as progress:
        data = asyncio.run(_closing(pipeline, pipeline.filter(progress)))
    _show("filter", data, json_output)
    if not json_output and data.get("dimensions"):
        table = Table(title="dimension winner agrees with the label", title_justify="left")
        for col in ("dimension", "all", "kept"):
            table.add_column(col)
        for dim, d in data["dimensions"].items():
            fmt = [
                f"{r:.1%}" if r is not None else "-" for r in (d["agreement_rate"], d["kept_agreement_rate"])
            ]
            table.add_row(dim, *fmt)
        console.print(table)


def _project(*, workdir: Path, config: Path | None = None, json_output: bool = False, **flags: Any) -> None:
    """Project each kept comparison into one pointwise critique per image (order-checked)."""
    pipeline = _pipeline(workdir, _settings(config, flags))
    with progress_bar("projecting", not json_output) as progress:
        data = asyncio.run(_closing(pipeline, pipeline.project(progress)))
    _show("projection", data, json_output)


def _build_dataset(
    *,
    workdir: Path,
    out: Path | None = None,
    config: Path | None = None,
    json_output: bool = False,
    **flags: Any,
) -> None:
    """Write the SFT dataset (JSONL and a datasets folder), split by request."""
    data = _pipeline(workdir, _settings(config, flags)).build_dataset(out)
    if json_output:
        print_json(data)
        return
    table = Table(title=Text(f"SFT dataset {data['out']}"), title_justify="left")
    for col in ("split", "pairwise", "pointwise", "requests"):
        table.add_column(col)
    for split, counts in data["counts"].items():
        table.add_row(
            split, str(counts["pairwise"]), str(counts["pointwise"]), str(data["request_groups"][split])
        )
    console.print(table)


def _run_all(
    *, preferences: Path, workdir: Path, config: Path | None = None, json_output: bool = False, **flags: Any
) -> None:
    """Every phase: anchor → filter → project → build-dataset."""
    pipeline = _pipeline(workdir, _settings(config, flags), preferences)
    with progress_bar("PARROT", not json_output) as progress:
        data = asyncio.run(pipeline.run(progress))
    if json_output:
        print_json(data)
        return
    for phase in ("anchor", "filter", "project"):
        _show(phase, data[phase], False)
    console.print(
        plain(
            "SFT dataset written to ", (str(data["dataset"]["out"]), "bold"), f": {data['dataset']['counts']}"
        )
    )


_PREFS = fixed_param(
    "preferences", Annotated[Path, typer.Argument(help="Preference set folder or preferences.jsonl.")]
)


def _register_phases() -> None:
    common = [
        fixed_param("workdir", _WORKDIR),
        fixed_param("config", _CONFIG, None),
        fixed_param("json_output", _JSON, False),
    ]
    out = fixed_param(
        "out",
        Annotated[Path | None, typer.Option("--out", help="Dataset folder (default: WORKDIR/dataset).")],
        None,
    )
    every = [f.name for f in dataclasses.fields(ParrotSettings)]
    specs = [
        ("anchor", _anchor, [_PREFS, *common], _TEACHER),
        ("filter", _filter, common, _PREDICTOR),
        ("project", _project, common, (*_TEACHER, "tie_tolerance")),
        ("build-dataset", _build_dataset, [*common, out], _DATASET),
        ("run", _run_all, [_PREFS, *common], every),
    ]
    for name, func, fixed, names in specs:
        command = with_signature(func, fixed, dataclass_flags(ParrotSettings, names))
        parrot_app.command(name, help=func.__doc__)(command)


_register_phases()


def register(train_app: typer.Typer) -> None:
    """Add ``parrot`` to ``gcr train``."""
    train_app.add_typer(parrot_app, name="parrot")
