"""GenEval (djghosh13/geneval): 553 object-focused prompts with their evaluation metadata.

Published layout (cited from the repository):

* ``prompts/evaluation_metadata.jsonl``: one JSON object per line, written by
  ``prompts/create_prompts.py`` as ``print(json.dumps(sample))`` with the fields
  ``tag`` (``single_object``, ``two_object``, ``counting``, ``colors``,
  ``position``, ``color_attr``), ``include`` (a list of ``{"class", "count"}``
  plus optional ``"color"`` and ``"position": [relation, group index]``),
  optional ``exclude`` (same form), and ``prompt``.
* The images the evaluator reads (``evaluation/evaluate_images.py``, ``main``):
  ``<imagedir>/<subfolder>/`` for every subfolder whose name ``isdigit()``,
  holding ``metadata.jsonl`` (read with ``json.load``: one object, the N-th line
  of ``evaluation_metadata.jsonl``) and ``samples/`` whose files match
  ``\\d+\\.png``. ``generation/diffusers_generate.py`` names the subfolder
  ``f"{index:0>5}"`` (the line index) and the samples ``f"{count:05}.png"``; it
  writes ``metadata.jsonl`` with ``json.dump(metadata, fp)`` (no newline).

Each line becomes one case: id = the 5-digit line index (the evaluator's folder
name), category = ``tag``, and ``meta["metadata"]`` = the line's object,
unchanged, for the exporter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gcr.bench.prompt_set import BenchCase
from gcr.benchmarks.base import BenchmarkSet, build_set, require_file
from gcr.errors import DatasetError
from gcr.io import read_jsonl
from gcr.task import Task

NAME = "geneval"
METADATA_FILE = "evaluation_metadata.jsonl"


def find_metadata(path: Path) -> Path:
    """The metadata file: ``path`` itself, or ``evaluation_metadata.jsonl`` in it or in ``prompts/``."""
    if path.is_dir():
        for candidate in (path / METADATA_FILE, path / "prompts" / METADATA_FILE):
            if candidate.is_file():
                return candidate
        raise DatasetError(f"geneval: {path} holds no {METADATA_FILE} (nor prompts/{METADATA_FILE})")
    return require_file(path, "geneval")


def load(path: Path, split: str | None = None) -> BenchmarkSet:
    """Read GenEval's ``evaluation_metadata.jsonl`` (or a folder holding it)."""
    if split is not None:
        raise DatasetError("geneval has no splits")
    file = find_metadata(path)
    cases: list[BenchCase] = []
    for index, (lineno, value) in enumerate(read_jsonl(file)):
        where = f"{file}:{lineno}"
        if not isinstance(value, dict):
            raise DatasetError(f"{where}: expected a JSON object, got {type(value).__name__}")
        cases.append(_case(value, index, where))
    return build_set(NAME, "geneval", file, cases, Task.T2I)


def _case(metadata: dict[str, Any], index: int, where: str) -> BenchCase:
    for name in ("prompt", "tag", "include"):
        if name not in metadata:
            raise DatasetError(
                f"{where}: field {name!r} is missing (GenEval metadata has prompt, tag, include)"
            )
    prompt, tag, include = metadata["prompt"], metadata["tag"], metadata["include"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise DatasetError(f"{where}: field 'prompt' must be non-empty text")
    if not isinstance(tag, str) or not tag:
        raise DatasetError(f"{where}: field 'tag' must be non-empty text")
    if not isinstance(include, list) or not all(isinstance(r, dict) and "class" in r for r in include):
        raise DatasetError(f"{where}: field 'include' must be a list of objects with a 'class'")
    return BenchCase(
        id=f"{index:0>5}",
        prompt=" ".join(prompt.split()),
        category=tag,
        row=index,
        meta={"benchmark": NAME, "index": index, "metadata": metadata},
    )
