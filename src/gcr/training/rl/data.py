"""Prompt sets for RL: a JSONL file, one prompt per line, with optional source images.

Each line is an object with ``prompt`` (required), and for editing either
``source`` (one path) or ``sources`` (a list of paths); ``id`` is optional.
Relative image paths are resolved against the JSONL file's folder; missing files
fail when the file is read, but images are decoded only when a prompt is sampled.

Example lines::

    {"prompt": "a red cube on a blue sphere"}
    {"id": "e1", "prompt": "make the sky purple", "source": "images/beach.png"}
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from gcr.errors import DatasetError
from gcr.images import load_image
from gcr.io import read_jsonl


@dataclass(frozen=True)
class PromptRecord:
    """One prompt of the set, with the paths of its source images (empty for text-to-image)."""

    id: str
    prompt: str
    source_paths: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def is_edit(self) -> bool:
        return bool(self.source_paths)

    def load_sources(self, size: tuple[int, int] | None = None) -> list[Image.Image]:
        """The source images in RGB; with ``size`` (width, height) centre-cropped and resized to it."""
        images = [load_image(p) for p in self.source_paths]
        if size is None:
            return images
        return [ImageOps.fit(img, size, Image.Resampling.LANCZOS) for img in images]


def load_prompts(path: str | Path) -> list[PromptRecord]:
    """Read a prompt JSONL file; raise :class:`DatasetError` naming the line of any problem."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DatasetError(f"prompt file not found: {p}")
    records: list[PromptRecord] = []
    seen: set[str] = set()
    for lineno, row in read_jsonl(p):
        if not isinstance(row, dict):
            raise DatasetError(f"{p}:{lineno}: each line must be a JSON object")
        record = _record(row, p, lineno, len(records))
        if record.id in seen:
            raise DatasetError(f"{p}:{lineno}: duplicate id {record.id!r}")
        seen.add(record.id)
        records.append(record)
    if not records:
        raise DatasetError(f"{p} holds no prompts")
    kinds = {r.is_edit for r in records}
    if len(kinds) > 1:
        raise DatasetError(f"{p} mixes prompts with and without source images; use one kind per file")
    return records


def _record(row: dict, path: Path, lineno: int, index: int) -> PromptRecord:
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise DatasetError(f"{path}:{lineno}: field 'prompt' must be a non-empty string")
    if "source" in row and "sources" in row:
        raise DatasetError(f"{path}:{lineno}: give either 'source' or 'sources', not both")
    raw = row.get("sources", row.get("source"))
    if raw is None:
        raw_list: list = []
    elif isinstance(raw, str):
        raw_list = [raw]
    elif isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        raw_list = raw
    else:
        raise DatasetError(f"{path}:{lineno}: 'sources' must be a path or a list of paths")
    paths = []
    for s in raw_list:
        sp = Path(s).expanduser()
        sp = sp if sp.is_absolute() else path.parent / sp
        if not sp.is_file():
            raise DatasetError(f"{path}:{lineno}: source image not found: {sp}")
        paths.append(sp)
    rid = row.get("id", str(index))
    return PromptRecord(id=str(rid), prompt=prompt.strip(), source_paths=tuple(paths))


def epoch_prompts(
    records: Sequence[PromptRecord],
    *,
    dropped: Set[str],
    seed: int,
    epoch: int,
    per_process: int,
    num_processes: int = 1,
    process_index: int = 0,
) -> list[PromptRecord] | None:
    """This process's prompts for ``epoch``; None when every prompt has been dropped.

    All processes draw the same order (shuffled passes over the prompts still in use,
    repeated when there are fewer prompts than groups) and take disjoint slices of it.
    """
    available = [r for r in records if r.id not in dropped]
    if not available:
        return None
    need = per_process * num_processes
    rng = np.random.default_rng([seed, epoch])
    order: list[int] = []
    while len(order) < need:
        order.extend(rng.permutation(len(available)).tolist())
    start = process_index * per_process
    return [available[i] for i in order[start : start + per_process]]
