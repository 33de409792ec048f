"""T2I-CompBench and T2I-CompBench++ (Karine-Huang/T2I-CompBench): compositional prompts by category.

Published layout (cited from the repository):

* ``examples/dataset/<category>_val.txt``: one prompt per line (the test sets
  named in ``Readme.md``: ``color_val.txt, shape_val.txt, texture_val.txt,
  spatial_val.txt, non_spatial_val.txt, complex_val.txt``; T2I-CompBench++ adds
  ``3d_spatial_val.txt`` and ``numeracy_val.txt``). ``GORS_finetune/inference_eval.py``
  keeps the text before the first tab of each line
  (``d.strip("\\n").split("\\t")[0]``).
* The images the evaluators read: ``<out_dir>/samples/<prompt>_<NNNNNN>.png``
  (``inference_eval.py`` saves ``f"{prompts[0]}_{base_count:06}.png"`` with one
  running counter over the whole folder; ``BLIPvqa_eval/BLIP_vqa.py`` sorts the
  files by ``int(x.split("_")[-1].split('.')[0])`` and takes the prompt as
  ``file_name.split('_')[0]``). One category per ``out_dir``.

Each line becomes a case with id ``<category>-<line number>`` and category the
file's category; ``meta["prompt_text"]`` keeps the line's text exactly as the
official generation script would put it in the file name.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gcr.bench.prompt_set import BenchCase
from gcr.benchmarks.base import BenchmarkSet, build_set, read_dataset_text, require_file
from gcr.errors import DatasetError
from gcr.task import Task

logger = logging.getLogger(__name__)

NAME = "t2icompbench"
#: The categories, in the order of the paper's tables (T2I-CompBench, then the two ++ additions).
CATEGORIES: tuple[str, ...] = (
    "color", "shape", "texture", "spatial", "non_spatial", "complex", "3d_spatial", "numeracy",
)  # fmt: skip
SUFFIX = "_val.txt"


def exportable(text: str) -> bool:
    """Whether ``text`` can be a sample file name that BLIP_vqa.py reads back (``name.split('_')[0]``)."""
    return not any(bad in text for bad in ("_", "/", "\\", "\0")) and text not in (".", "..")


def category_of(file: Path) -> str:
    if not file.name.endswith(SUFFIX):
        raise DatasetError(f"t2icompbench: {file.name} is not a <category>{SUFFIX} file")
    return file.name[: -len(SUFFIX)]


def load(path: Path, split: str | None = None) -> BenchmarkSet:
    """Read one ``<category>_val.txt`` file, or every known one in a folder (``examples/dataset``)."""
    if split is not None:
        raise DatasetError("t2icompbench has no splits; pick a category file instead")
    if path.is_dir():
        folder = path / "examples" / "dataset" if (path / "examples" / "dataset").is_dir() else path
        files = [folder / f"{c}{SUFFIX}" for c in CATEGORIES if (folder / f"{c}{SUFFIX}").is_file()]
        if not files:
            wanted = ", ".join(f"{c}{SUFFIX}" for c in CATEGORIES)
            raise DatasetError(f"t2icompbench: {folder} holds none of {wanted}")
        name = "t2i-compbench"
    else:
        files = [require_file(path, "t2icompbench")]
        name = f"t2i-compbench-{category_of(path)}"
    cases: list[BenchCase] = []
    for file in files:
        category = category_of(file)
        for lineno, line in enumerate(read_dataset_text(file).splitlines(), start=1):
            text = line.strip("\n").split("\t")[0]
            prompt = " ".join(text.split())
            if not prompt:
                continue
            if not exportable(text):
                logger.warning(
                    "%s:%d: the prompt contains '_' or a path separator; it runs, but T2I-CompBench's "
                    "scorers cannot read it back from a file name, so export will leave it out",
                    file,
                    lineno,
                )
            cases.append(
                BenchCase(
                    id=f"{category}-{lineno:04d}",
                    prompt=prompt,
                    category=category,
                    row=len(cases),
                    meta={"benchmark": NAME, "category": category, "line": lineno, "prompt_text": text},
                )
            )
    return build_set(NAME, name, path, cases, Task.T2I)
