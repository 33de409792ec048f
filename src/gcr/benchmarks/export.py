"""Write a ``gcr bench`` run's images in the layout each official evaluator reads.

Three comparable sets come out of one run (``--set``):

* ``round0``: the first round's best image (the user's prompt as given);
* ``final``: the best image over all rounds (what gcr returns);
* ``baseline``: the pick of the best-of-n baseline (``gcr bench --baseline best-of-n``).

The names and files are those the benchmark's own scripts read; the source of
each is cited in the reader modules (:mod:`gcr.benchmarks.geneval` ...) and
next to each writer below. Images are written as PNG (copied byte for byte
when gcr saved them as PNG). An item without an image in the chosen set (a
failed prompt, or no baseline run) is left out and listed in the result.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from gcr.bench.eval.pairs import ImageRef
from gcr.bench.folder import BenchFolder
from gcr.benchmarks.base import BenchmarkSet
from gcr.errors import ImageError, InputError, RunError
from gcr.io import atomic_file, copy_file_atomic, write_bytes_atomic

logger = logging.getLogger(__name__)

SETS: tuple[str, ...] = ("round0", "final", "baseline")
LAYOUTS: tuple[str, ...] = ("geneval", "dpg", "t2icompbench", "gedit", "imgedit")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class ExportResult:
    """What an export wrote: the folder, how many images, and the items left out (id -> why)."""

    layout: str
    image_set: str
    out: Path
    written: int = 0
    files: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """One finished prompt of the run: its record and the image of the chosen set."""

    id: str
    meta: dict[str, Any]
    image: Path
    record: dict[str, Any]


def set_images(folder: BenchFolder, image_set: str) -> tuple[list[Item], dict[str, str]]:
    """The run's items with an image in ``image_set``, in the run's order, and those without one."""
    if image_set not in SETS:
        raise InputError(f"unknown set {image_set!r}: use one of {', '.join(SETS)}")
    folder.settings()  # a folder without gcr bench results fails here, clearly
    results = folder.records("results")
    baselines = folder.records("baseline")
    items: list[Item] = []
    missing: dict[str, str] = {}
    for case_id, record in results.items():
        if record.get("status") != "ok":
            missing[case_id] = "the prompt failed"
            continue
        if image_set == "baseline":
            base = baselines.get(case_id)
            if base is None or base.get("status") != "ok":
                missing[case_id] = "no finished best-of-n baseline (run gcr bench with --baseline best-of-n)"
                continue
            relative = base.get("best_image")
        else:
            relative = record.get("initial_image" if image_set == "round0" else "best_image")
        if not relative:
            missing[case_id] = f"no {image_set} image"
            continue
        try:
            path = folder.resolve(relative)
        except RunError as exc:
            missing[case_id] = str(exc)
            continue
        if not path.is_file():
            missing[case_id] = f"image {path} is missing"
            continue
        items.append(Item(case_id, dict(record.get("meta") or {}), path, record))
    items.sort(key=lambda item: _order(item.record))
    return items, missing


def _order(record: Mapping[str, Any]) -> tuple[int, str]:
    meta = record.get("meta") or {}
    for key in ("index", "line"):
        if isinstance(meta.get(key), int):
            return meta[key], str(record.get("id"))
    return 0, str(record.get("id"))


def _write_png(source: Path, target: Path) -> None:
    with source.open("rb") as fh:
        head = fh.read(len(_PNG_MAGIC))
    if head == _PNG_MAGIC:
        copy_file_atomic(source, target)
        return
    with Image.open(source) as img, atomic_file(target) as out:
        img.save(out, format="PNG")


def _write_source_png(ref: ImageRef, target: Path) -> None:
    """A dataset image as PNG, as ``input_image.save(path)`` would write it: stored PNG bytes unchanged,
    anything else re-encoded in its own mode (no RGB conversion)."""
    encoded = ref._encoded()
    if isinstance(encoded, bytes) and encoded.startswith(_PNG_MAGIC):
        write_bytes_atomic(target, encoded)
    elif isinstance(encoded, Image.Image):
        with atomic_file(target) as out:
            encoded.save(out, format="PNG")
    else:
        try:
            with (
                Image.open(io.BytesIO(encoded) if isinstance(encoded, bytes) else encoded) as img,
                atomic_file(target) as out,
            ):
                img.save(out, format="PNG")
        except (OSError, Image.DecompressionBombError) as exc:
            raise ImageError(f"{ref.where}: cannot decode the image: {exc}") from None


def _need_meta(item: Item, layout: str, *names: str) -> list[Any]:
    meta = item.meta
    if meta.get("benchmark") not in (layout, None) or any(n not in meta for n in names):
        raise RunError(
            f"prompt {item.id} was not read with the {layout} reader (its record lacks {', '.join(names)});"
            f" run gcr bench on {layout}:PATH to export in this layout"
        )
    return [meta[n] for n in names]


# --------------------------------------------------------------------------- writers


def _geneval(items: list[Item], out: Path, result: ExportResult, **_: Any) -> None:
    # geneval evaluation/evaluate_images.py: <imagedir>/<digits>/metadata.jsonl (json.load) and
    # samples/<digits>.png; generation/diffusers_generate.py writes f"{index:0>5}" folders,
    # json.dump(metadata, fp) and f"{count:05}.png" samples.
    for item in items:
        index, metadata = _need_meta(item, "geneval", "index", "metadata")
        folder = out / f"{int(index):0>5}"
        (folder / "samples").mkdir(parents=True, exist_ok=True)
        (folder / "metadata.jsonl").write_text(json.dumps(metadata), encoding="utf-8")
        target = folder / "samples" / f"{0:05}.png"
        _write_png(item.image, target)
        result.files.append(str(target.relative_to(out)))


def _dpg(items: list[Item], out: Path, result: ExportResult, **_: Any) -> None:
    # ELLA dpg_bench/compute_dpg_bench.py: every file of --image-root-path, keyed by
    # basename.split('.')[0] == item_id; score with --pic-num 1 for one image per prompt.
    for item in items:
        (item_id,) = _need_meta(item, "dpg", "item_id")
        target = out / f"{item_id}.png"
        _write_png(item.image, target)
        result.files.append(target.name)


def _t2icompbench(items: list[Item], out: Path, result: ExportResult, **_: Any) -> None:
    # T2I-CompBench GORS_finetune/inference_eval.py: <outdir>/samples/f"{prompt}_{count:06}.png", one
    # running count per folder; BLIPvqa_eval/BLIP_vqa.py reads the prompt back as the name before "_".
    from gcr.benchmarks.t2icompbench import exportable

    counters: dict[str, int] = {}
    for item in items:
        category, text = _need_meta(item, "t2icompbench", "category", "prompt_text")
        if not exportable(str(text)) or not exportable(str(category)):
            result.missing[item.id] = "its prompt contains '_' or '/', which the scorer cannot read back"
            continue
        count = counters.get(category, 0)
        counters[category] = count + 1
        target = out / category / "samples" / f"{text}_{count:06}.png"
        _write_png(item.image, target)
        result.files.append(str(target.relative_to(out)))


def _gedit(
    items: list[Item], out: Path, result: ExportResult, *, benchmark: BenchmarkSet | None, model_name: str
) -> None:
    # Step1X-Edit GEdit-Bench/generate_image_example.py: <save_path>/fullset/<task_type>/<lang>/<key>.png
    # and <key>_SRCIMG.png (the dataset's input_image); save_path = <results>/<model name> (EVAL.md).
    if benchmark is None or benchmark.benchmark != "gedit":
        raise InputError(
            "the gedit layout writes each item's <key>_SRCIMG.png from the dataset's input_image: "
            "pass the same benchmark with --benchmark gedit:PATH (or gedit-en:PATH)"
        )
    if not re.fullmatch(r"[A-Za-z0-9._-]+", model_name) or model_name in (".", ".."):
        raise InputError(f"--model-name {model_name!r}: use letters, digits, '.', '_' or '-'")
    root = out / model_name
    for item in items:
        key, task_type, lang = _need_meta(item, "gedit", "key", "task_type", "instruction_language")
        extras = benchmark.extras.get(item.id)
        if extras is None:
            raise RunError(f"prompt {item.id} is not in the --benchmark set; pass the set the run used")
        folder = root / "fullset" / task_type / lang
        target = folder / f"{key}.png"
        _write_png(item.image, target)
        srcimg = folder / f"{key}_SRCIMG.png"
        if not srcimg.is_file():
            _write_source_png(extras["srcimg"], srcimg)
        result.files += [str(target.relative_to(out)), str(srcimg.relative_to(out))]


def _imgedit(items: list[Item], out: Path, result: ExportResult, **_: Any) -> None:
    # ImgEdit Benchmark/Basic/basic_bench.py: <result_img_folder>/f"{key}.png"; its --edit_json must
    # list only the keys that have an image, so the exported entries go to OUT/basic_edit.json.
    entries: dict[str, dict[str, str]] = {}
    for item in items:
        key, image_id, prompt, edit_type = _need_meta(
            item, "imgedit", "key", "image_id", "prompt_text", "edit_type"
        )
        target = out / f"{key}.png"
        _write_png(item.image, target)
        result.files.append(target.name)
        entries[key] = {"id": image_id, "prompt": prompt, "edit_type": edit_type}
    edit_json = out / "basic_edit.json"
    edit_json.write_text(json.dumps(entries, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")


_WRITERS: dict[str, Callable[..., None]] = {
    "geneval": _geneval,
    "dpg": _dpg,
    "t2icompbench": _t2icompbench,
    "gedit": _gedit,
    "imgedit": _imgedit,
}


def export_run(
    run: str | Path,
    layout: str,
    image_set: str,
    out: str | Path,
    *,
    benchmark: BenchmarkSet | None = None,
    model_name: str | None = None,
) -> ExportResult:
    """Write the ``image_set`` images of the ``gcr bench`` folder ``run`` to ``out`` in ``layout``."""
    if layout not in _WRITERS:
        raise InputError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    folder = BenchFolder(run)
    items, missing = set_images(folder, image_set)
    if benchmark is not None:
        bound = (folder.settings().get("prompt_set") or {}).get("digest")
        if bound is not None and bound != benchmark.digest():
            raise InputError(f"--benchmark {benchmark.source} is not the prompt set {folder.path} was run on")
    target = Path(out).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    result = ExportResult(layout, image_set, target, missing=dict(missing))
    _WRITERS[layout](items, target, result, benchmark=benchmark, model_name=model_name or f"gcr-{image_set}")
    result.written = sum(1 for item in items if item.id not in result.missing)
    logger.info(
        "exported %d %s images to %s (%d left out)", result.written, image_set, target, len(result.missing)
    )
    return result
