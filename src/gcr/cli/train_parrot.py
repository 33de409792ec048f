"""``gcr train parrot ...`` and ``gcr train sft``: make a reasoning critic from preference pairs.

::

    gcr train parrot import HPD.json --layout hpd --out prefs/
    gcr train parrot validate prefs/
    gcr train parrot run prefs/ --workdir work/ --teacher-url http://127.0.0.1:8000/v1
    gcr train sft examples/sft_qwen3vl.yaml --dataset work/dataset --output-dir critic/

``run`` is ``anchor`` → ``filter`` → ``project`` → ``build-dataset``; each phase
also runs alone and resumes where it stopped. The phase and SFT flags are made
from the settings dataclasses (:class:`~gcr.training.parrot.pipeline.ParrotSettings`,
:class:`~gcr.training.sft.config.SFTRunConfig`), so a flag, a YAML key and a
Python keyword are the same setting with the same help text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import types
import typing
from collections.abc import Callable, Coroutine, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gcr.cli.console import console, err_console, plain
from gcr.training.parrot.pipeline import ParrotSettings
from gcr.training.sft.config import SFTRunConfig

parrot_app = typer.Typer(
    name="parrot",
    help="PARROT: turn preference pairs into a reasoning critic's training data (anchor, filter, project).",
    no_args_is_help=True,
)

# -- flags from dataclass fields ----------------------------------------------------------


def _flag_type(hint: Any) -> Any:
    """The CLI type of a settings field: every flag is optional (None = keep the config's value)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if origin is list:
        return list[str] | None
    return hint | None


def dataclass_flags(cls: type, names: Iterable[str] | None = None) -> list[inspect.Parameter]:
    """One keyword parameter with a ``typer.Option`` per field of ``cls`` (help text from the metadata)."""
    hints = typing.get_type_hints(cls)
    wanted = set(names) if names is not None else None
    params = []
    for f in dataclasses.fields(cls):
        if wanted is not None and f.name not in wanted:
            continue
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        is_bool = hint is bool
        decl = f"{flag}/--no-{f.name.replace('_', '-')}" if is_bool else flag
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f.metadata.get("help", "")
        if default not in ("", None):
            help_text += f" (default: {', '.join(default) if isinstance(default, list) else default})"
        if isinstance(default, list):
            help_text += " Repeat the flag or separate values with commas."
        option = typer.Option(decl, help=help_text, show_default=False)
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[_flag_type(hint), option],
            )
        )
    return params


def _overrides(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in names or value is None:
            continue
        if isinstance(value, list):
            value = [part.strip() for v in value for part in str(v).split(",") if part.strip()]
        out[name] = value
    return out


def _with_signature(func: Callable[..., Any], fixed: list[inspect.Parameter], flags: list[inspect.Parameter]):
    func.__signature__ = inspect.Signature([*fixed, *flags])  # type: ignore[attr-defined]
    func.__annotations__ = {}
    return func


def _fixed(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


# -- shared rendering ---------------------------------------------------------------------


@contextmanager
def _progress(label: str, show: bool):
    if not show:
        yield None
        return
    columns = (
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _print_json(data: Any) -> None:
    console.out(json.dumps(data, indent=2, default=str), highlight=False)


def _kv_table(title: str, rows: Iterable[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, f"{value:.1%}" if isinstance(value, float) else str(value))
    return table


def _problems(problems: list[str], limit: int = 20) -> None:
    for line in problems[:limit]:
        console.print(plain("  ", ("✗", "red"), f" {line}"), highlight=False)
    if len(problems) > limit:
        console.print(f"  … and {len(problems) - limit} more (use --json for all)")


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


# -- import / validate ----------------------------------------------------------------------


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
        _print_json(data)
    else:
        console.print(
            _kv_table(
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
        _problems(data["problems"])
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
        _print_json(data)
    else:
        console.print(
            _kv_table(
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
        _problems(data["problems"])
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
    return ParrotSettings.from_yaml(config, **_overrides(ParrotSettings, values))


def _show(title: str, data: dict[str, Any], json_output: bool) -> None:
    if json_output:
        _print_json(data)
        return
    scalars = [(k, v) for k, v in data.items() if isinstance(v, (int, float, str)) or v is None]
    console.print(_kv_table(title, scalars))
    for key in ("failed_keys", "dropped_items", "violation_items"):
        items = data.get(key)
        if items:
            lines = [f"{k}: {v}" for k, v in items.items()] if isinstance(items, dict) else list(items)
            console.print(plain((key.replace("_", " "), "bold")))
            _problems(lines, limit=10)


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
    with _progress("anchoring", not json_output) as progress:
        data = _run(_closing(pipeline, pipeline.anchor(progress)))
    _show("anchor", data, json_output)


def _filter(*, workdir: Path, config: Path | None = None, json_output: bool = False, **flags: Any) -> None:
    """Phase 2: keep only rationales that re-predict the preference without the label."""
    pipeline = _pipeline(workdir, _settings(config, flags))
    with _progress("predicting", not json_output) as progress:
        data = _run(_closing(pipeline, pipeline.filter(progress)))
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
    with _progress("projecting", not json_output) as progress:
        data = _run(_closing(pipeline, pipeline.project(progress)))
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
        _print_json(data)
        return
    table = Table(title=f"SFT dataset {data['out']}", title_justify="left")
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
    with _progress("PARROT", not json_output) as progress:
        data = _run(pipeline.run(progress))
    if json_output:
        _print_json(data)
        return
    for phase in ("anchor", "filter", "project"):
        _show(phase, data[phase], False)
    console.print(
        plain(
            "SFT dataset written to ", (str(data["dataset"]["out"]), "bold"), f": {data['dataset']['counts']}"
        )
    )


_PREFS = _fixed(
    "preferences", Annotated[Path, typer.Argument(help="Preference set folder or preferences.jsonl.")]
)


def _register_phases() -> None:
    common = [
        _fixed("workdir", _WORKDIR),
        _fixed("config", _CONFIG, None),
        _fixed("json_output", _JSON, False),
    ]
    out = _fixed(
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
        command = _with_signature(func, fixed, dataclass_flags(ParrotSettings, names))
        parrot_app.command(name, help=func.__doc__)(command)


_register_phases()

# -- sft ------------------------------------------------------------------------------------


def _sft(*, config: Path | None = None, dry_run: bool = False, **flags: Any) -> None:
    """Fine-tune a critic on a PARROT dataset with TRL (settings: YAML, then flags)."""
    settings = SFTRunConfig.from_yaml(config, **_overrides(SFTRunConfig, flags))
    if dry_run:
        _print_json(settings.to_dict())
        return
    from gcr.training.sft.trainer import run_sft

    err_console.print(
        plain("training ", (str(settings.model), "bold"), f" ({settings.finetune}) on {settings.dataset}")
    )
    result = run_sft(settings).to_dict()
    rows = [
        ("model folder", result["output_dir"]),
        ("steps", result["global_step"]),
        (
            "first / last loss",
            " / ".join(f"{x:.4f}" for x in result["train_losses"][:1] + result["train_losses"][-1:]),
        ),
    ]
    evaluation = result.get("eval") or {}
    if evaluation.get("error"):
        rows.append(("val pairwise accuracy", f"not measured: {evaluation['error']}"))
    overall = evaluation.get("overall") or {}
    if overall:
        acc = overall.get("accuracy")
        rows.append(("val pairwise accuracy", "n/a" if acc is None else f"{acc:.1%}"))
        rows.append(("val pairs evaluated / failed", f"{overall.get('evaluated')} / {overall.get('failed')}"))
    console.print(_kv_table("SFT", rows))
    console.print(plain("load it as a critic with ", (f"--critic {result['output_dir']}", "bold")))


def register(train_app: typer.Typer) -> None:
    """Add ``parrot`` and ``sft`` to ``gcr train``."""
    train_app.add_typer(parrot_app, name="parrot")
    fixed = [
        _fixed(
            "config",
            Annotated[Path | None, typer.Argument(help="YAML config (see examples/sft_qwen3vl.yaml).")],
            None,
        ),
        _fixed(
            "dry_run",
            Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and stop.")],
            False,
        ),
    ]
    command = _with_signature(_sft, fixed, dataclass_flags(SFTRunConfig))
    train_app.command("sft", help=_sft.__doc__)(command)
