"""The field's standard generation and editing benchmarks, read in their published layouts.

``gcr bench NAME:PATH`` runs one of them (``geneval:prompts/evaluation_metadata.jsonl``,
``gedit-en:GEdit-Bench/`` ...); ``gcr bench export`` writes the results back in
the layout each official evaluator reads (:mod:`gcr.benchmarks.export`), and the
edit benchmarks are scored inside gcr with rubric judges
(:mod:`gcr.benchmarks.scoring`, averaged as in :mod:`gcr.benchmarks.aggregate`).

=================  ==================================================  ======
reader             input                                               task
=================  ==================================================  ======
``geneval``        ``evaluation_metadata.jsonl`` (or its folder)        t2i
``dpg``            ``dpg_bench.csv`` or ``dpg_bench/prompts/``          t2i
``t2icompbench``   ``<category>_val.txt`` or ``examples/dataset/``      t2i
``gedit``          GEdit-Bench Parquet shards / ``save_to_disk``        edit
``gedit-en/-cn``   the same, one language                              edit
``imgedit``        ``basic_edit.json`` (originals beside it)            edit
=================  ==================================================  ======
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from gcr.benchmarks.base import BenchmarkSet
from gcr.errors import DatasetError

Reader = Callable[[Path, str | None], BenchmarkSet]


def _gedit(language: str | None) -> Reader:
    def read(path: Path, split: str | None = None) -> BenchmarkSet:
        from gcr.benchmarks import gedit

        return gedit.load(path, split, language=language)

    return read


def _module_reader(module: str) -> Reader:
    def read(path: Path, split: str | None = None) -> BenchmarkSet:
        import importlib

        return importlib.import_module(f"gcr.benchmarks.{module}").load(path, split)  # type: ignore[no-any-return]

    return read


#: Reader name -> function reading that benchmark from a local path.
READERS: dict[str, Reader] = {
    "geneval": _module_reader("geneval"),
    "dpg": _module_reader("dpg"),
    "t2icompbench": _module_reader("t2icompbench"),
    "gedit": _gedit(None),
    "gedit-en": _gedit("en"),
    "gedit-cn": _gedit("cn"),
    "imgedit": _module_reader("imgedit"),
}


def split_spec(spec: str) -> tuple[str, str] | None:
    """``("gedit-en", "PATH")`` for ``gedit-en:PATH``; None when ``spec`` names no benchmark reader."""
    name, sep, path = spec.partition(":")
    if not sep or name.strip().lower() not in READERS:
        return None
    return name.strip().lower(), path


def load_benchmark(spec: str, split: str | None = None) -> BenchmarkSet:
    """Read ``NAME:PATH`` (see the module docstring) into a prompt set ``gcr bench`` can run."""
    parsed = split_spec(spec)
    if parsed is None:
        raise DatasetError(
            f"{spec!r} names no benchmark: write NAME:PATH with NAME one of {', '.join(READERS)}"
        )
    name, raw = parsed
    if not raw.strip():
        raise DatasetError(f"{name}: give the benchmark's path after the colon ({name}:PATH)")
    path = Path(raw).expanduser()
    if not path.exists():
        raise DatasetError(f"{name}: {path} not found")
    loaded = READERS[name](path, split)
    return dataclasses.replace(loaded, source=f"{name}:{path}")


__all__ = ["READERS", "BenchmarkSet", "load_benchmark", "split_spec"]
