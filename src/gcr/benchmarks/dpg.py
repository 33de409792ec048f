"""DPG-Bench (TencentQQGYLab/ELLA, ``dpg_bench/``): 1,065 dense prompts scored by VQA questions.

Published layout (cited from the repository):

* ``dpg_bench/prompts/<item_id>.txt``: one prompt per file, the whole file is
  the prompt (e.g. ``dpg_bench/prompts/1.txt``).
* ``dpg_bench/dpg_bench.csv``: one row per question, columns named in
  ``compute_dpg_bench.py`` (``prepare_dpg_data``): ``item_id, text, keywords,
  proposition_id, dependency, category_broad, category_detailed, tuple,
  question_natural_language``; the rows of one prompt are consecutive.
* The images the evaluator reads (``compute_dpg_bench.py``,
  ``compute_dpg_one_sample``): every file of ``--image-root-path``; the item is
  ``osp.basename(image_path).split('.')[0]``, so an image is named
  ``<item_id>.<ext>``; the image is cut into ``--pic-num`` tiles of
  ``--resolution`` pixels (a 2x2 grid of four samples with ``PIC_NUM=4`` in
  ``dist_eval.sh``; one tile, the image itself, with ``--pic-num 1``).

Reading either the prompts folder (id = file stem) or the CSV (id = ``item_id``,
prompt = ``text``, one case per item; ``meta["categories"]`` lists its
``category_broad`` values).
"""

from __future__ import annotations

from pathlib import Path

from gcr.bench.prompt_set import BenchCase
from gcr.benchmarks.base import BenchmarkSet, build_set, csv_rows, read_dataset_text, require_file
from gcr.errors import DatasetError
from gcr.task import Task

NAME = "dpg"
CSV_FILE = "dpg_bench.csv"
CSV_COLUMNS = ("item_id", "text")


def load(path: Path, split: str | None = None) -> BenchmarkSet:
    """Read DPG-Bench from ``dpg_bench.csv``, a folder holding it, or the ``prompts/`` folder of .txt."""
    if split is not None:
        raise DatasetError("DPG-Bench has no splits")
    if path.is_dir():
        for candidate in (path / CSV_FILE, path / "dpg_bench" / CSV_FILE):
            if candidate.is_file():
                return _from_csv(candidate)
        prompts = path / "prompts" if (path / "prompts").is_dir() else path
        return _from_prompt_files(prompts)
    require_file(path, "dpg")
    if path.suffix.lower() != ".csv":
        raise DatasetError(f"dpg: {path} is neither {CSV_FILE} nor a folder of <item_id>.txt prompt files")
    return _from_csv(path)


def _check_id(item_id: str, where: str) -> str:
    # The evaluator keys an image by basename.split('.')[0]: an id with a dot or a path separator
    # could never be matched to its questions.
    if "." in item_id or "/" in item_id or "\\" in item_id:
        raise DatasetError(f"{where}: item id {item_id!r} contains '.' or a path separator")
    return item_id


def _from_csv(file: Path) -> BenchmarkSet:
    cases: list[BenchCase] = []
    current: dict[str, object] | None = None
    done: set[str] = set()
    for lineno, row in csv_rows(file, CSV_COLUMNS, "DPG-Bench"):
        where = f"{file}:{lineno}"
        item_id = _check_id((row.get("item_id") or "").strip(), where)
        if not item_id:
            raise DatasetError(f"{where}: field 'item_id' is empty")
        if current is not None and current["id"] == item_id:
            _add_category(current, row)
            continue
        if item_id in done:
            raise DatasetError(f"{where}: the rows of item {item_id!r} are not consecutive")
        if current is not None:
            cases.append(_finish(current, len(cases)))
        text = " ".join((row.get("text") or "").split())
        if not text:
            raise DatasetError(f"{where}: field 'text' is empty")
        current = {"id": item_id, "text": text, "categories": [], "where": where}
        done.add(item_id)
        _add_category(current, row)
    if current is not None:
        cases.append(_finish(current, len(cases)))
    return build_set(NAME, "dpg-bench", file, cases, Task.T2I)


def _add_category(current: dict[str, object], row: dict[str, str]) -> None:
    category = (row.get("category_broad") or "").strip()
    kept = current["categories"]
    assert isinstance(kept, list)
    if category and category not in kept:
        kept.append(category)


def _finish(current: dict[str, object], index: int) -> BenchCase:
    item_id = str(current["id"])
    return BenchCase(
        id=item_id,
        prompt=str(current["text"]),
        row=index,
        meta={"benchmark": NAME, "item_id": item_id, "categories": list(current["categories"])},  # type: ignore[call-overload]
    )


def _from_prompt_files(folder: Path) -> BenchmarkSet:
    files = sorted((p for p in folder.glob("*.txt") if p.is_file()), key=_natural)
    if not files:
        raise DatasetError(f"dpg: {folder} holds neither {CSV_FILE} nor <item_id>.txt prompt files")
    cases = []
    for index, file in enumerate(files):
        text = " ".join(read_dataset_text(file).split())
        if not text:
            raise DatasetError(f"{file}: the prompt file is empty")
        item_id = _check_id(file.stem, str(file))
        cases.append(BenchCase(item_id, text, row=index, meta={"benchmark": NAME, "item_id": item_id}))
    return build_set(NAME, "dpg-bench", folder, cases, Task.T2I)


def _natural(path: Path) -> tuple[int, int | str]:
    return (0, int(path.stem)) if path.stem.isdigit() else (1, path.stem)
