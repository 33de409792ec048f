"""The SFT dataset: chat ``messages`` + ``images`` records that teach the critic its own answers.

Each record is one conversation the critic will later have: the system message
and user turn are exactly what the critic sends at inference (the built-in or
given critic template, rendered by :func:`gcr.critic.templates.render_pairwise` /
``render_pointwise`` and turned into chat messages by the in-process backend's
:func:`~gcr.critic.backends.transformers_local.build_chat_messages`), and the
assistant turn is the kept comparison or a projected pointwise critique. Image
parts stay where the template puts them, as ``{"type": "image"}`` blocks filled
in order from ``images``.

Split: records are grouped by request (task, normalized request text, and the
content of the source images), and a group goes to validation when a salted hash
of its key falls below ``val_fraction``, so no request appears on both sides and
a group's side never changes when data is added. Mix: ``pairwise_fraction``
subsamples the training split (deterministically, by hash) to that share of
pairwise examples; validation keeps everything so accuracy is measured on every
held-out pair.

Written to ``out/train.jsonl`` and ``out/val.jsonl`` (image paths absolute) and
to ``out/hf`` with :meth:`datasets.DatasetDict.save_to_disk` (images embedded;
splits ``train`` and ``validation``, the latter omitted when empty).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcr.critic.backends.base import ChatRequest
from gcr.critic.templates import CritiqueTemplate, load_template, render_pairwise, render_pointwise
from gcr.errors import ConfigError, DatasetError, DependencyError
from gcr.io import atomic_file, dump_line
from gcr.task import Task
from gcr.training.parrot.data import PreferenceItem, PreferenceSet

logger = logging.getLogger(__name__)

HF_DIR = "hf"
TRAIN_SPLIT = "train"
VAL_SPLIT = "validation"


@dataclass(frozen=True)
class DatasetSettings:
    """How the SFT dataset is mixed and split."""

    pairwise_fraction: float | None = None
    val_fraction: float = 0.05
    salt: str = "gcr-parrot"
    #: Critic templates to render the user turn with, keyed by (mode, task); built-ins otherwise.
    critic_templates: Mapping[tuple[str, Task], str | Path] = field(default_factory=dict)
    write_hf: bool = True

    def __post_init__(self) -> None:
        if self.pairwise_fraction is not None and not 0.0 <= self.pairwise_fraction <= 1.0:
            raise ConfigError(f"pairwise_fraction must be between 0 and 1, got {self.pairwise_fraction}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclass
class DatasetReport:
    out: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    dropped_by_mix: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "counts": self.counts,
            "request_groups": self.groups,
            "dropped_by_mix": self.dropped_by_mix,
        }


def _unit(text: str) -> float:
    """A stable number in [0, 1) from ``text``."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def normalize_request(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def request_group(item: PreferenceItem, prefs: PreferenceSet) -> str:
    """The key that ties together every record made for the same request (and source images)."""
    h = hashlib.sha256(f"{item.task.value}\0{normalize_request(item.request)}".encode())
    for rel in item.source_images:
        h.update(b"\0" + hashlib.sha256(prefs.resolve(rel).read_bytes()).digest())
    return h.hexdigest()[:20]


def _assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def chat_record(request: ChatRequest, answer: str) -> list[dict[str, Any]]:
    """System + user messages exactly as the in-process critic builds them, then the answer."""
    from gcr.critic.backends.transformers_local import build_chat_messages  # imports torch; only when used

    messages = [*build_chat_messages(request), _assistant(answer)]
    for message in messages:  # one block shape for every message, so Arrow stores them as one type
        message["content"] = [{"type": b["type"], "text": b.get("text")} for b in message["content"]]
    return messages


def _split_groups(groups: set[str], fraction: float, salt: str) -> set[str]:
    val = {g for g in groups if _unit(f"{salt}:split:{g}") < fraction}
    if fraction > 0 and not val and len(groups) >= 2:
        val = {min(groups, key=lambda g: _unit(f"{salt}:split:{g}"))}
        logger.info("no request group fell into validation by hash; moved the lowest-hash group there")
    return val


def _mix(
    records: list[dict[str, Any]], fraction: float | None, salt: str
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    if fraction is None:
        return records, {}
    pair = [r for r in records if r["kind"] == "pairwise"]
    point = [r for r in records if r["kind"] == "pointwise"]
    n_pair, n_point = len(pair), len(point)
    if fraction == 1.0:
        n_point = 0
    elif fraction == 0.0:
        n_pair = 0
    elif n_pair / max(1, n_pair + n_point) > fraction:
        n_pair = min(n_pair, round(fraction * n_point / (1 - fraction)))
    else:
        n_point = min(n_point, round((1 - fraction) * n_pair / fraction))

    def take(rs: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
        return sorted(rs, key=lambda r: _unit(f"{salt}:mix:{r['key']}"))[:n]

    kept = take(pair, n_pair) + take(point, n_point)
    return kept, {"pairwise": len(pair) - n_pair, "pointwise": len(point) - n_point}


def build_sft_dataset(
    prefs: PreferenceSet,
    kept: Mapping[str, str],
    pointwise: list[dict[str, Any]],
    out_dir: str | Path,
    settings: DatasetSettings | None = None,
) -> DatasetReport:
    """Write the SFT dataset from kept comparisons (``id`` → answer) and projected pointwise records."""
    settings = settings or DatasetSettings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_id = prefs.by_id()
    templates: dict[tuple[str, Task], CritiqueTemplate] = {}

    def template(mode: str, task: Task) -> CritiqueTemplate:
        if (mode, task) not in templates:
            templates[(mode, task)] = load_template(mode, task, settings.critic_templates.get((mode, task)))  # type: ignore[arg-type]
        return templates[(mode, task)]

    records: list[dict[str, Any]] = []
    groups: dict[str, str] = {}
    for item_id, answer in sorted(kept.items()):
        item = by_id[item_id]
        images = prefs.load_images(item)
        request = render_pairwise(
            template("pairwise", item.task), item.request, images.a, images.b, images.sources
        )
        paths = [*item.source_images, item.image_a, item.image_b]
        groups[item_id] = request_group(item, prefs)
        records.append(_record("pairwise", item, "", request, paths, answer, prefs, groups[item_id]))
    stale = sorted({rec["id"] for rec in pointwise} - set(kept))
    if stale:
        logger.warning(
            "%d item(s) have pointwise critiques but no kept comparison (filtered again after projection?); "
            "their critiques are left out: %s",
            len(stale),
            ", ".join(stale[:10]),
        )
    for rec in (r for r in pointwise if r["id"] in kept):
        item = by_id[rec["id"]]
        if rec["id"] not in groups:
            groups[rec["id"]] = request_group(item, prefs)
        images = prefs.load_images(item)
        cand = rec["candidate"]
        request = render_pointwise(
            template("pointwise", item.task), item.request, images.candidate(cand), images.sources
        )
        paths = [*item.source_images, item.image_a if cand == "A" else item.image_b]
        records.append(
            _record("pointwise", item, cand, request, paths, rec["answer"], prefs, groups[rec["id"]])
        )
    if not records:
        raise DatasetError("no kept comparisons or pointwise critiques to build a dataset from")

    val_groups = _split_groups(set(groups.values()), settings.val_fraction, settings.salt)
    train = [r for r in records if r["group"] not in val_groups]
    val = [r for r in records if r["group"] in val_groups]
    train, dropped = _mix(train, settings.pairwise_fraction, settings.salt)
    train.sort(key=lambda r: _unit(f"{settings.salt}:order:{r['key']}"))
    val.sort(key=lambda r: r["key"])

    report = DatasetReport(out=out, dropped_by_mix=dropped)
    for name, rows in (("train", train), ("val", val)):
        report.counts[name] = {k: sum(r["kind"] == k for r in rows) for k in ("pairwise", "pointwise")}
        report.groups[name] = len({r["group"] for r in rows})
        _write_jsonl(out / f"{name}.jsonl", rows)
    if settings.write_hf:
        _write_hf(out / HF_DIR, train, val)
    (out / "dataset_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    logger.info("SFT dataset in %s: train %s, val %s", out, report.counts["train"], report.counts["val"])
    return report


def _record(
    kind: str,
    item: PreferenceItem,
    candidate: str,
    request: ChatRequest,
    paths: list[str],
    answer: str,
    prefs: PreferenceSet,
    group: str,
) -> dict[str, Any]:
    if len(paths) != len(request.images):
        raise DatasetError(
            f"item {item.id}: the critic template places {len(request.images)} images "
            f"but the item has {len(paths)}"
        )
    return {
        "key": f"{kind}:{item.id}:{candidate}",
        "messages": chat_record(request, answer),
        "images": [str(prefs.resolve(p).resolve()) for p in paths],
        "kind": kind,
        "item_id": item.id,
        "candidate": candidate,
        "task": item.task.value,
        "label": item.label,
        "request": item.request,
        "group": group,
    }


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_file(path, "w") as fh:
        for row in rows:
            fh.write(dump_line(row))


def hf_features() -> Any:
    """The ``datasets`` schema of the SFT records."""
    try:
        import datasets
    except ImportError:
        raise DependencyError("datasets", "train", "Writing the SFT dataset") from None
    text = datasets.Value("string")
    return datasets.Features(
        {
            "messages": datasets.List({"role": text, "content": datasets.List({"type": text, "text": text})}),
            "images": datasets.List(datasets.Image()),
            **{k: text for k in ("key", "kind", "item_id", "candidate", "task", "label", "request", "group")},
        }
    )


def _write_hf(path: Path, train: list[dict[str, Any]], val: list[dict[str, Any]]) -> None:
    import datasets

    features = hf_features()

    def to_dataset(rows: list[dict[str, Any]]) -> Any:
        embedded = [
            {**r, "images": [{"bytes": Path(p).read_bytes(), "path": Path(p).name} for p in r["images"]]}
            for r in rows
        ]
        return datasets.Dataset.from_list(embedded, features=features)

    splits = {TRAIN_SPLIT: to_dataset(train)} if train else {}
    if val:
        splits[VAL_SPLIT] = to_dataset(val)
    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # the library logs; it does not draw progress bars
    try:
        datasets.DatasetDict(splits).save_to_disk(str(path))
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()
