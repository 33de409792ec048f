"""GEdit-Bench (stepfun-ai/Step1X-Edit, dataset ``stepfun-ai/GEdit-Bench``): real-world edits, EN and CN.

Published layout (cited from ``GEdit-Bench/generate_image_example.py`` in
stepfun-ai/Step1X-Edit, which lists the dataset's fields and writes the results):

* Dataset rows: ``task_type`` (one of the 11 groups below), ``key`` (the item's
  id), ``instruction``, ``instruction_language`` (``en`` or ``cn``),
  ``input_image`` (written as the source the judge compares against),
  ``input_image_raw`` (the raw image the example feeds the editing model), and
  ``Intersection_exist`` (bool).
* The results folder the evaluator reads:
  ``<save_path>/fullset/<task_type>/<instruction_language>/<key>.png`` (the
  edited image) beside ``<key>_SRCIMG.png`` (``input_image`` as saved by the
  example), where ``save_path`` is ``<results>/<model name>``
  (``GEdit-Bench/EVAL.md``: ``results/method_name/fullset/edit_task/{cn,en}/key.png``).
* The 11 task types, as listed by the statistics scripts derived from the
  official one (``GROUPS`` in ``eval/gen/gedit/calculate_statistics.py`` of the
  BAGEL repositories, e.g. zijianghsmaduo/Bagel, which states its origin is
  GEdit-Bench): background_change, color_alter, material_alter, motion_change,
  ps_human, style_change, subject-add, subject-remove, subject-replace,
  text_change, tone_transfer.

Each row becomes an edit case: id ``<lang>-<key>`` (a key is shared by the EN
and CN versions of an item), category ``task_type``, source image
``input_image_raw``; ``input_image`` is kept aside for the exporter
(``extras[id]["srcimg"]``). Images stay in the dataset files until used.
Readers ``gedit-en`` and ``gedit-cn`` keep one language.
"""

from __future__ import annotations

from pathlib import Path

from gcr.bench.prompt_set import BenchCase
from gcr.benchmarks.base import BenchmarkSet, HFRows, build_set, require_columns, text_field
from gcr.errors import DatasetError
from gcr.task import Task

NAME = "gedit"
TASK_TYPES: tuple[str, ...] = (
    "background_change", "color_alter", "material_alter", "motion_change", "ps_human", "style_change",
    "subject-add", "subject-remove", "subject-replace", "text_change", "tone_transfer",
)  # fmt: skip
LANGUAGES: tuple[str, ...] = ("en", "cn")
TEXT_COLUMNS = ("key", "task_type", "instruction", "instruction_language")
IMAGE_COLUMNS = ("input_image", "input_image_raw")
SOURCE_COLUMN = "input_image_raw"
SRCIMG_COLUMN = "input_image"
INTERSECTION_COLUMN = "Intersection_exist"


def load(path: Path, split: str | None = None, *, language: str | None = None) -> BenchmarkSet:
    """Read GEdit-Bench from Parquet shards or a ``save_to_disk`` folder; ``language`` keeps en or cn."""
    if language is not None and language not in LANGUAGES:
        raise DatasetError(f"gedit: unknown language {language!r}; use en or cn")
    rows = HFRows(path, split, "GEdit-Bench")
    require_columns(rows.columns, (*TEXT_COLUMNS, *IMAGE_COLUMNS), str(path), "GEdit-Bench")
    wanted = [*TEXT_COLUMNS, *([INTERSECTION_COLUMN] if INTERSECTION_COLUMN in rows.columns else [])]
    cases: list[BenchCase] = []
    extras = {}
    for index, row in rows.rows(wanted):
        where = f"{path} row {index}"
        lang = text_field(row, "instruction_language", where)
        if lang not in LANGUAGES:
            raise DatasetError(f"{where}: field 'instruction_language' is {lang!r}, expected en or cn")
        if language is not None and lang != language:
            continue
        key = text_field(row, "key", where)
        task_type = text_field(row, "task_type", where)
        if "/" in key or "\\" in key or key in (".", ".."):
            raise DatasetError(f"{where}: field 'key' {key!r} cannot be a file name")
        if "/" in task_type or "\\" in task_type or task_type in (".", ".."):
            raise DatasetError(f"{where}: field 'task_type' {task_type!r} cannot be a folder name")
        case_id = f"{lang}-{key}"
        meta = {
            "benchmark": NAME,
            "key": key,
            "task_type": task_type,
            "instruction_language": lang,
            "intersection_exist": _flag(row.get(INTERSECTION_COLUMN)),
        }
        source = rows.image(index, SOURCE_COLUMN, f"{where}, field {SOURCE_COLUMN!r}")
        cases.append(
            BenchCase(
                case_id,
                " ".join(text_field(row, "instruction", where).split()),
                (source,),
                category=task_type,
                row=index,
                meta=meta,
            )
        )
        extras[case_id] = {"srcimg": rows.image(index, SRCIMG_COLUMN, f"{where}, field {SRCIMG_COLUMN!r}")}
    suffix = f"-{language}" if language else ""
    return build_set(NAME, f"gedit-bench{suffix}", path, cases, Task.EDIT, extras)


def _flag(value: object) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)
