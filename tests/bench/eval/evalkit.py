"""Synthetic benchmarks and a scripted critic for the ``gcr eval`` tests.

Every case has a canonical human label and scripted critic scores, so the
expected accuracy is known exactly. Datasets are written in each benchmark's
field layout (docs/eval.md) and each storage form (Parquet with
embedded image records, ``save_to_disk`` folders, JSON Lines with image paths
or base64), with real PNG images: candidate A red, candidate B blue, sources
green (the scripted critics tell the candidates apart by colour).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from gcr.critic.schema import (
    TASK_DIMENSIONS,
    Critique,
    DimensionJudgement,
    PairwiseCritique,
    PairwiseJudgement,
)
from gcr.errors import CriticUnavailableError, CritiqueParseError
from gcr.task import Task
from stubs.eval_critic_server import EvalScript, ScriptedPair


@dataclass(frozen=True)
class Case:
    key: str
    label: str  # canonical: A, B, tie, unknown
    a: tuple[float | None, float | None, float | None, float | None]  # TF, IF, PQ, TR
    b: tuple[float | None, float | None, float | None, float | None]
    category: str
    fault: str | None = None


# Predictions at tie tolerance 0 (t2i and edit alike, IF is equal on both sides):
CASES: tuple[Case, ...] = (
    Case("case-01", "A", (4, 3, 3, None), (2, 3, 3, None), "cat-x"),  # A, right
    Case("case-02", "B", (2, 3, 2, None), (3, 3, 3, None), "cat-x"),  # B, right
    Case("case-03", "A", (3, 3, 3, None), (3, 3, 3, None), "cat-x"),  # tie, wrong
    Case("case-04", "A", (3, 3, 3, 2), (2, 3, 3, 4), "cat-x"),  # B, wrong
    Case("case-05", "tie", (3, 3, 3, None), (3, 3, 3, None), "cat-x"),  # tie, right
    Case("case-06", "tie", (4, 3, 3, None), (3, 3, 3, None), "cat-y"),  # A, wrong
    Case("case-07", "B", (3, 3, 3, None), (4, 3, 3, None), "cat-y", fault="http500"),  # failed
    Case("case-08", "A", (4, 3, 3, None), (3, 3, 3, None), "cat-y", fault="garbage"),  # fails
    Case("case-09", "unknown", (4, 3, 3, None), (3, 3, 3, None), "cat-y"),  # skipped
    Case("case-10", "B", (3.5, 3, 2.5, None), (3, 3, 3.25, None), "cat-y"),  # B by 0.25, right
    Case("case-11", "A", (3, 3, 3, None), (2.75, 3, 3, None), "cat-y"),  # A by 0.25, right
)
#: With ties labelled (GenAI-Bench, EditReward-Bench): correct / evaluated at tolerance 0 and 0.5.
WITH_TIES = {"correct": 5, "evaluated": 8, "correct_tol_0.5": 3}
#: MMRB2 has no tie labels: the two tie-labelled cases are left out of its datasets.
MMRB2_CASES = tuple(c for c in CASES if c.label != "tie")
WITHOUT_TIES = {"correct": 4, "evaluated": 6}

DIMS = ("text_faithfulness", "image_faithfulness", "physical_quality", "text_rendering")


def scores(values: Sequence[float | None], task: Task) -> dict[str, float | None]:
    wanted = {d.value for d in TASK_DIMENSIONS[task]}
    return {k: v for k, v in zip(DIMS, values, strict=True) if k in wanted}


def png(color: tuple[int, int, int], size: int = 16) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def case_images(index: int) -> dict[str, bytes]:
    """Distinct images per case (so content hashes differ), with A red, B blue, source green."""
    shade = 10 + index
    return {"a": png((210, shade, 10)), "b": png((10, shade, 210)), "src": png((10, 210, shade))}


def prompt_of(case: Case) -> str:
    return f"A scene for {case.key}: a red fox next to a blue lake"


# -- label encodings per benchmark --------------------------------------------------
def encode_label(layout: str, label: str) -> Any:
    if layout.startswith("mmrb2"):
        return {"A": "A", "B": "B", "unknown": "C"}[label]
    if layout.startswith("genai"):
        return {"A": "leftvote", "B": "rightvote", "tie": "tievote", "unknown": ""}[label]
    if layout == "editreward":
        return {"A": "A>B", "B": "B>A", "tie": "A=B", "unknown": "A?B"}[label]
    raise ValueError(layout)


def build_rows(layout: str, image_value: Any, cases: Sequence[Case] | None = None) -> list[dict[str, Any]]:
    """Rows in ``layout``; ``image_value(case_index, which, png_bytes)`` says how an image is stored."""
    cases = cases if cases is not None else (MMRB2_CASES if layout.startswith("mmrb2") else CASES)
    rows = []
    for i, case in enumerate(cases):
        imgs = case_images(i)
        a, b, src = (image_value(i, k, imgs[k]) for k in ("a", "b", "src"))
        label = encode_label(layout, case.label)
        if layout in ("mmrb2-t2i", "mmrb2-edit"):
            rows.append({
                "id": case.key, "prompt_text": prompt_of(case),
                "prompt_images": [src] if layout == "mmrb2-edit" else [],
                "response_a_images": [a], "response_b_images": [b], "chosen": label,
                "category": case.category,
            })
        elif layout == "genai-t2i":
            rows.append({"prompt": prompt_of(case), "left_image": a, "right_image": b, "vote_type": label,
                         "category": case.category})
        elif layout == "genai-edit":
            rows.append({"source_prompt": "a fox", "target_prompt": "a fox by a lake",
                         "instruct_prompt": prompt_of(case), "source_image": src, "left_output_image": a,
                         "right_output_image": b, "vote_type": label, "category": case.category})
        elif layout == "editreward":
            rows.append({"id": case.key, "instruction": prompt_of(case), "source_image": src,
                         "candidate_1": a, "candidate_2": b, "ranking": label, "dataset": case.category,
                         "comparison_type": "AvsB"})
        else:
            raise ValueError(layout)
    return rows


def hf_image(_: int, __: str, data: bytes) -> dict[str, Any]:
    return {"bytes": data, "path": None}


def _features(rows: list[dict[str, Any]]) -> Any:
    import datasets

    feats = {}
    for name, value in rows[0].items():
        if isinstance(value, dict):
            feats[name] = datasets.Image()
        elif isinstance(value, list):
            feats[name] = datasets.List(datasets.Image())
        else:
            feats[name] = datasets.Value("string")
    return datasets.Features(feats)


def write_parquet(layout: str, path: Path, shards: int = 1) -> Path:
    """Parquet with Hugging Face Image records; ``shards`` > 1 writes a folder of shard files."""
    import datasets

    rows = build_rows(layout, hf_image)
    ds = datasets.Dataset.from_list(rows, features=_features(rows))
    if shards == 1:
        ds.to_parquet(str(path))
        return path
    path.mkdir(parents=True)
    for s in range(shards):
        ds.shard(shards, s, contiguous=True).to_parquet(str(path / f"train-{s:05d}-of-{shards:05d}.parquet"))
    return path


def write_saved(layout: str, folder: Path, splits: Sequence[str] | None = None) -> Path:
    """A ``save_to_disk`` folder (a DatasetDict when ``splits`` are given)."""
    import datasets

    rows = build_rows(layout, hf_image)
    ds = datasets.Dataset.from_list(rows, features=_features(rows))
    (datasets.DatasetDict({s: ds for s in splits}) if splits else ds).save_to_disk(str(folder))
    return folder


def write_jsonl(layout: str, folder: Path, how: str = "paths") -> Path:
    """JSON Lines with images as relative paths (``how="paths"``), base64 text or data URLs."""
    folder.mkdir(parents=True, exist_ok=True)

    def value(i: int, which: str, data: bytes) -> str:
        if how == "paths":
            rel = Path("images") / f"{i:03d}_{which}.png"
            (folder / rel).parent.mkdir(exist_ok=True)
            (folder / rel).write_bytes(data)
            return rel.as_posix()
        encoded = base64.b64encode(data).decode()
        return encoded if how == "base64" else "data:image/png;base64," + encoded

    path = folder / "pairs.jsonl"
    rows = build_rows(layout, value)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# -- scripted critics -----------------------------------------------------------------
def script_table(task: Task, cases: Sequence[Case] = CASES) -> dict[str, ScriptedPair]:
    return {c.key: ScriptedPair(task, scores(c.a, task), scores(c.b, task), c.fault) for c in cases}


def http_script(task: Task) -> EvalScript:
    return EvalScript(script_table(task))


def side_of(image: Image.Image) -> str:
    r, g, b = image.convert("RGB").resize((1, 1)).getpixel((0, 0))
    top = max(r, g, b)
    return "A" if top == r else "B" if top == b else "source"


class FakeCritic:
    """An in-process critic answering from the same table as the HTTP script (no parsing involved)."""

    model_id = "fake-critic"

    def __init__(self, task: Task, *, delay: float = 0.0, first_bonus: float = 0.0) -> None:
        self.table = script_table(task)
        #: Added to the text-faithfulness score of whichever image is shown first (a position bias).
        self.first_bonus = first_bonus
        self.healthy = False
        self.delay = delay
        self.calls: list[tuple[str, str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def _entry(self, prompt: str) -> tuple[str, ScriptedPair]:
        key = next(k for k in self.table if k in prompt)
        return key, self.table[key]

    async def _enter(self, key: str, mode: str, side: str) -> ScriptedPair:
        self.calls.append((key, mode, side))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        entry = self.table[key]
        if entry.fault and not self.healthy:
            if entry.fault == "http500":
                raise CriticUnavailableError(f"the critic server answered HTTP 500 for {key}")
            raise CritiqueParseError("no readable critique", "Both pictures are nice.")
        return entry

    async def acompare(self, prompt, image_a, image_b, *, sources=(), task=None) -> PairwiseCritique:
        key, _ = self._entry(prompt)
        shown = side_of(image_a) + side_of(image_b)
        assert shown in ("AB", "BA")
        assert all(side_of(s) == "source" for s in sources)
        entry = await self._enter(key, "pairwise", shown)
        first, second = entry.scores_a, entry.scores_b
        if shown == "BA":
            first, second = second, first

        def biased(dimension: str, score: float | None) -> float | None:
            if score is None or dimension != "text_faithfulness":
                return score
            return score + self.first_bonus

        judgements = [
            PairwiseJudgement(
                dimension=d, score_a=biased(d.value, first[d.value]), score_b=second[d.value]
            )
            for d in TASK_DIMENSIONS[entry.task]
        ]
        return PairwiseCritique(task=entry.task, judgements=judgements, raw_text=f"scripted {key}")

    async def acritique(self, prompt, image, *, sources=(), task=None) -> Critique:
        key, _ = self._entry(prompt)
        side = side_of(image)
        entry = await self._enter(key, "pointwise", side)
        values = entry.scores_a if side == "A" else entry.scores_b
        dims = TASK_DIMENSIONS[entry.task]
        judgements = [DimensionJudgement(dimension=d, score=values[d.value]) for d in dims]
        return Critique(task=entry.task, judgements=judgements, raw_text=f"scripted {key} {side}")
