"""Judge every pair of a benchmark with a critic: concurrent, resumable, one record per pair.

Two modes:

* ``pairwise`` (the released model's native mode): one request shows the
  critic the source image(s), candidate A and candidate B, and its per-dimension
  Score A / Score B are summed.
* ``pointwise``: each candidate is critiqued on its own and the two critiques'
  dimension scores are summed the same way (N/A or a missing dimension counted
  as 2.5). A candidate shared by several pairs (EditReward-Bench's 3- and
  4-candidate groups) is critiqued once per run.

Either way a record stores both sums (``total_a``, ``total_b``); the
prediction is made from them when the report is built, so the tie tolerance
can change without judging anything again.

With ``both_orders`` (pairwise only) every pair is also judged with its
candidates swapped, as the MMRB2 official scorer does to control position bias
(facebookresearch/MMRB2 ``evaluate/compute_scores/compute_accuracy.py`` scores a
``forward`` and a ``reverse`` judgement per pair). Each order is its own record
(``order``: ``"ab"`` or ``"ba"``), keyed by pair id and order, so a run resumes
order by order and the ``"ab"`` records of a single-order run are reused. A
``"ba"`` record's sums and scores are stored under the pair's own A/B labels;
its ``critique`` is the raw answer, in the order shown to the critic.

Pairs with an unknown label are not sent to the critic (counted instead).
A critic error (:class:`~gcr.errors.GCRError`: server down, HTTP 500 after
retries, unparseable answer) or a broken image fails only its pair: the
record says why, and the next run tries that pair again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from PIL import Image

from gcr.bench.eval.datasets import EvalDataset, PairKey
from gcr.bench.eval.output import RESULTS_FILE, check_run_settings
from gcr.bench.eval.pairs import PreferencePair
from gcr.critic.schema import NA_PAIRWISE_SCORE, Critique, PairwiseCritique
from gcr.errors import GCRError, InputError
from gcr.image_input import ImageInput
from gcr.io import ResultStore
from gcr.task import Task

#: PIL pixels, or (for critics with ``accepts_image_inputs``) the stored bytes or file.
AnyImage = Image.Image | ImageInput

logger = logging.getLogger(__name__)

Mode = Literal["pairwise", "pointwise"]
MODES: tuple[str, ...] = ("pairwise", "pointwise")
Order = Literal["ab", "ba"]
#: A record key: the pair id and the order its candidates were shown in.
RecordKey = tuple[str, str]


def record_key(record: dict[str, Any]) -> RecordKey:
    """The key of a result record; records written before orders existed are ``"ab"``."""
    return record["id"], record.get("order", "ab")


class PreferenceCritic(Protocol):
    """The part of :class:`gcr.critic.critic.Critic` an evaluation needs."""

    async def acompare(
        self,
        prompt: str,
        image_a: Image.Image,
        image_b: Image.Image,
        *,
        sources: Sequence[Image.Image] = (),
        task: Task | None = None,
    ) -> PairwiseCritique: ...

    async def acritique(
        self,
        prompt: str,
        image: Image.Image,
        *,
        sources: Sequence[Image.Image] = (),
        task: Task | None = None,
    ) -> Critique: ...


@dataclass(frozen=True)
class EvalSettings:
    """How to run an evaluation."""

    mode: Mode = "pairwise"
    #: Pairs judged at the same time (pointwise mode sends up to two requests per pair).
    concurrency: int = 8
    #: Only the first ``limit`` rows of the dataset (in file order).
    limit: int | None = None
    #: Judge every pair as (A, B) and as (B, A) (pairwise mode only).
    both_orders: bool = False

    @property
    def orders(self) -> tuple[Order, ...]:
        return ("ab", "ba") if self.both_orders else ("ab",)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"unknown mode {self.mode!r}: use pairwise or pointwise")
        if self.both_orders and self.mode != "pairwise":
            raise InputError("both orders apply to pairwise mode: a pointwise critique sees one image")
        if self.concurrency < 1:
            raise InputError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"limit must be at least 1, not {self.limit}")


@dataclass
class EvalOutcome:
    """What a run ended with: a record per labelled pair in scope, and the counts around them."""

    out_dir: Path
    keys: list[PairKey]
    #: Latest record per (pair id, order) (successful ones from earlier runs included).
    records: dict[RecordKey, dict[str, Any]]
    requested: int = 0
    reused: int = 0
    elapsed_s: float = 0.0
    unknown_label_ids: list[str] = field(default_factory=list)


def pointwise_totals(critique_a: Critique, critique_b: Critique) -> tuple[float, float, dict[str, list]]:
    """Score sums of two single-image critiques over the union of their dimensions (N/A = 2.5)."""
    scores: dict[str, list[float | None]] = {}
    for side, critique in ((0, critique_a), (1, critique_b)):
        for judgement in critique.judgements:
            scores.setdefault(judgement.dimension.value, [None, None])[side] = judgement.score
    total_a = sum(NA_PAIRWISE_SCORE if a is None else a for a, _ in scores.values())
    total_b = sum(NA_PAIRWISE_SCORE if b is None else b for _, b in scores.values())
    return total_a, total_b, scores


def _load_images(
    pair: PreferencePair, critic: PreferenceCritic
) -> tuple[list[AnyImage], AnyImage, AnyImage]:
    """The pair's images for the critic: stored bytes for gcr's Critic, decoded pixels for any other."""
    if getattr(critic, "accepts_image_inputs", False):
        return [s.to_input() for s in pair.sources], pair.image_a.to_input(), pair.image_b.to_input()
    return [s.load() for s in pair.sources], pair.image_a.load(), pair.image_b.load()


def _digests(pair: PreferencePair) -> tuple[tuple[str, ...], str, str]:
    return tuple(s.digest() for s in pair.sources), pair.image_a.digest(), pair.image_b.digest()


class _PointwiseCache:
    """Shares one critique among the pairs that show the critic the same candidate for the same request."""

    def __init__(self, critic: PreferenceCritic, keep: int = 256) -> None:
        self.critic = critic
        self.keep = keep
        self._tasks: OrderedDict[tuple, asyncio.Task[Critique]] = OrderedDict()

    async def critique(
        self, key: tuple, prompt: str, image: AnyImage, sources: list[AnyImage], task: Task
    ) -> Critique:
        job = self._tasks.get(key)
        if job is None:
            job = asyncio.ensure_future(self.critic.acritique(prompt, image, sources=sources, task=task))
            self._tasks[key] = job
            self._evict()
        else:
            self._tasks.move_to_end(key)
        # shield: a cancelled pair must not cancel a critique another pair is waiting for.
        return await asyncio.shield(job)

    def _evict(self) -> None:
        for old in list(self._tasks):
            if len(self._tasks) <= self.keep:
                break
            if self._tasks[old].done():
                del self._tasks[old]


async def _judge(
    pair: PreferencePair, critic: PreferenceCritic, mode: Mode, cache: _PointwiseCache, order: Order = "ab"
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": pair.id,
        "order": order,
        "row": pair.row,
        "task": pair.task.value,
        "mode": mode,
        "label": pair.label,
        "raw_label": pair.raw_label,
        "category": pair.category,
    }
    start = time.perf_counter()
    try:
        pair.check()
        sources, image_a, image_b = await asyncio.to_thread(_load_images, pair, critic)
        if mode == "pairwise":
            first, second = (image_a, image_b) if order == "ab" else (image_b, image_a)
            critique = await critic.acompare(pair.prompt, first, second, sources=sources, task=pair.task)
            total_a, total_b = critique.totals()
            scores = {j.dimension.value: [j.score_a, j.score_b] for j in critique.judgements}
            if order == "ba":  # back to the pair's own labels
                total_a, total_b = total_b, total_a
                scores = {dim: [b, a] for dim, (a, b) in scores.items()}
            record["scores"] = scores
            record["critique"] = critique.model_dump(mode="json")
        else:
            digests = await asyncio.to_thread(_digests, pair)
            base = (pair.task.value, pair.prompt, digests[0])
            critique_a, critique_b = await asyncio.gather(
                cache.critique((*base, digests[1]), pair.prompt, image_a, sources, pair.task),
                cache.critique((*base, digests[2]), pair.prompt, image_b, sources, pair.task),
            )
            total_a, total_b, record["scores"] = pointwise_totals(critique_a, critique_b)
            record["critique_a"] = critique_a.model_dump(mode="json")
            record["critique_b"] = critique_b.model_dump(mode="json")
        record.update(status="ok", total_a=total_a, total_b=total_b)
    except GCRError as exc:
        logger.warning("pair %s failed: %s", pair.id, exc)
        record.update(status="failed", error={"type": type(exc).__name__, "message": str(exc)})
    record["elapsed_s"] = round(time.perf_counter() - start, 4)
    record["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return record


async def run_eval(
    dataset: EvalDataset,
    critic: PreferenceCritic,
    out_dir: str | Path,
    settings: EvalSettings | None = None,
    *,
    critic_id: str | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> EvalOutcome:
    """Judge the pairs of ``dataset`` not yet judged successfully in ``out_dir``.

    ``on_start(to_request, already_done)`` is called once the work is known;
    ``on_result(record)`` after each pair (records are on disk by then).
    Exceptions other than :class:`GCRError` are bugs: they stop the run, and
    the records written so far are kept for the next run.
    """
    settings = settings or EvalSettings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_run_settings(
        out,
        {
            "dataset": str(dataset.path),
            "dataset_name": dataset.name,
            "dataset_rows": len(dataset),
            "layout": dataset.layout.name,
            "mode": settings.mode,
            "critic": critic_id,
        },
    )
    started = time.perf_counter()
    store = ResultStore(out / RESULTS_FILE, key=record_key)
    done = store.load()
    keys = list(dataset.scan(settings.limit))
    unknown = [k.id for k in keys if k.label == "unknown"]
    in_scope = {(k.id, order) for k in keys if k.label != "unknown" for order in settings.orders}
    todo = in_scope - done.keys()
    records = {key: rec for key, rec in done.items() if key in in_scope}
    outcome = EvalOutcome(out, keys, records, reused=len(records), unknown_label_ids=unknown)
    if on_start is not None:
        on_start(len(todo), len(records))
    if unknown:
        logger.info("%d pairs have an unknown label and are skipped", len(unknown))

    cache = _PointwiseCache(critic)
    slots = asyncio.Semaphore(settings.concurrency)

    async def judge_one(pair: PreferencePair, order: Order) -> None:
        try:
            record = await _judge(pair, critic, settings.mode, cache, order)
        finally:
            slots.release()
        store.append(record)
        outcome.records[pair.id, order] = record
        outcome.requested += 1
        if on_result is not None:
            on_result(record)

    tasks: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []

    def finished(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            failures.append(task.exception())  # type: ignore[arg-type]

    with store:
        pairs = dataset.pairs(settings.limit)
        try:
            while True:
                # Reading a batch of rows may touch disk; keep the event loop free meanwhile.
                pair = await asyncio.to_thread(next, pairs, None)
                if pair is None:
                    break
                for order in settings.orders:
                    if (pair.id, order) not in todo:
                        continue
                    await slots.acquire()
                    if failures:
                        slots.release()
                        break
                    task = asyncio.create_task(judge_one(pair, order))
                    tasks.add(task)
                    task.add_done_callback(finished)
                if failures:
                    break
            if tasks:
                await asyncio.wait(set(tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    if failures:
        raise failures[0]
    outcome.elapsed_s = time.perf_counter() - started
    return outcome
