"""Run the refine graph with a SQLite checkpointer in the run folder, resumably.

This is what ``gcr refine`` (and batch runs) use; a host application that
compiles the graph itself does not need it. :class:`RunSpec` records how a run
was started (``run.json``), so ``--resume`` can rebuild the same generator,
critic and refiner and continue from the last checkpoint: finished nodes are
not run again, and finished candidates of an interrupted round are kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic
from langgraph.graph import StateGraph
from langgraph.types import Command, Overwrite

from gcr.agent.checkpoints import damaged_store, open_checkpointer
from gcr.agent.context import RefineContext
from gcr.agent.graph import GRAPH_NAME
from gcr.agent.image_writer import BarrierSqliteSaver, ImageWriter, write_behind
from gcr.agent.nodes.review import ReviewAnswer
from gcr.agent.run_folder import RunFolder
from gcr.errors import ConfigError, InputError, RunError
from gcr.limits import check_prompt
from gcr.redact import redact_data

logger = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]
#: Called with the review request of an interactive run; returns a ReviewAnswer, a dict or a string.
ReviewHandler = Callable[[dict[str, Any]], Any]

SPEC_VERSION = 1

#: LangGraph's checkpoint durability modes that keep a run resumable.
Durability = Literal["sync", "async"]


@dataclass
class RunSpec:
    """How a run was started: inputs, settings and the specs of its collaborators.

    ``generator``, ``critic`` and the refiner fields are the strings a user gave
    (model ids, paths, URLs); ``None`` means gcr's default for the task (see
    :mod:`gcr.agent.components`). ``generator_kind`` names the generator in the
    registry (``diffusers``, ``openai-images`` or a plugin). ``context`` holds the
    refine settings; a mapping (as ``run.json`` stores them) is read into a
    :class:`RefineContext`, every value type-checked.
    """

    prompt: str
    source_images: list[str] = field(default_factory=list)
    context: RefineContext = field(default_factory=RefineContext)
    generator: str | None = None
    generator_kind: str = "diffusers"
    generator_options: dict[str, Any] = field(default_factory=dict)
    critic: str | None = None
    critic_model: str | None = None
    refiner: str = "critic"
    refiner_url: str | None = None
    refiner_model: str | None = None
    cache_dir: str | None = None
    use_cache: bool = True
    thread_id: str = "refine"
    version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        check_prompt(" ".join(str(self.prompt).split()))
        if not isinstance(self.context, RefineContext):
            if not isinstance(self.context, Mapping):
                raise InputError(f"run settings must be a mapping, not a {type(self.context).__name__}")
            self.context = RefineContext.from_dict(self.context, "the run settings")

    def save(self, folder: RunFolder) -> None:
        """Write ``run.json``; URL passwords are masked (a resume asks for the URL again)."""
        folder.write_json(RunFolder.SETTINGS, redact_data(dataclasses.asdict(self)))

    @classmethod
    def load(cls, folder: RunFolder) -> RunSpec:
        data = folder.read_json(RunFolder.SETTINGS)
        if not isinstance(data, dict) or data.get("version") != SPEC_VERSION:
            raise RunError(
                f"{folder.file(RunFolder.SETTINGS)} was written by another gcr version; start a new run"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (InputError, ConfigError, TypeError) as exc:
            raise RunError(f"{folder.file(RunFolder.SETTINGS)} cannot be resumed: {exc}") from None


@dataclass
class RunOutcome:
    """The end of one call to :func:`run_refine`: final state values, or a pending review."""

    values: dict[str, Any]
    finished: bool
    pending_review: dict[str, Any] | None = None


def _located(values: Any, folder: RunFolder) -> dict[str, Any]:
    """The state's values with ``run_dir`` naming where the run folder is now (it may have moved;
    the other paths in the state are relative to it)."""
    located = dict(values)
    if located:
        located["run_dir"] = str(folder.path)
    summary = located.get("summary")
    if summary and summary.get("run_dir") and summary["run_dir"] != str(folder.path):
        located["summary"] = _moved_summary(summary, Path(summary["run_dir"]), folder)
    return located


def _moved_summary(summary: dict[str, Any], old: Path, folder: RunFolder) -> dict[str, Any]:
    """A finished run's summary with its absolute paths moved from ``old`` into ``folder``."""

    def moved(path: str | None) -> str | None:
        if path is None or not Path(path).is_relative_to(old):
            return path
        return str(folder.path / Path(path).relative_to(old))

    updated = {**summary, "run_dir": str(folder.path)}
    updated["source_images"] = [moved(p) for p in summary.get("source_images") or []]
    if summary.get("best"):
        best = dict(summary["best"])
        best["image"], best["critique"] = moved(best.get("image")), moved(best.get("critique"))
        updated["best"] = best
    return updated


def _rewrite_missing_trajectory(folder: RunFolder, values: Any) -> None:
    """Write ``trajectory.jsonl`` again from the checkpoint when it is gone (deleted because damaged)."""
    rounds = list(values.get("rounds") or [])
    if rounds and not folder.file(RunFolder.TRAJECTORY).exists():
        folder.write_trajectory(rounds, list(values.get("candidates") or []))


def _finished(snapshot: Any) -> bool:
    """Whether the graph ran to its end.

    ``snapshot.next`` is not enough: it leaves out tasks whose writes were already saved,
    so a process killed after some tasks of a superstep finished (but before the
    superstep's checkpoint) shows an empty ``next`` although the run is not over. Any
    task at all, finished or not, means there is more to run.
    """
    return not snapshot.tasks


async def run_refine(
    builder: StateGraph[Any, Any, Any, Any],
    folder: RunFolder,
    spec: RunSpec,
    *,
    resume: bool = False,
    on_event: EventHandler | None = None,
    on_review: ReviewHandler | None = None,
    durability: Durability = "async",
) -> RunOutcome:
    """Run (or resume) one refine run in ``folder`` with a SQLite checkpointer.

    Checkpoints are saved in the background while the next step runs (``durability="async"``,
    the default), which keeps the run folder's image writes off the critical path; a
    checkpoint is never saved before the run-folder images it may name are complete on disk
    (see :mod:`gcr.agent.image_writer`). A process killed before a save loses only the steps
    since the last one, which a resume runs again. ``"sync"`` saves each checkpoint before
    the next step starts.

    A new run writes ``run.json`` first. ``resume=True`` continues from the last
    checkpoint; a run that already finished returns its final values at once.
    Reviews of an interactive run go to ``on_review``; without one the call
    returns with ``pending_review`` set, and a later ``resume=True`` call answers it.
    """
    folder.create()
    context = spec.context
    if context.run_dir and RunFolder(context.run_dir).path != folder.path:
        raise RunError(f"the settings name run folder {context.run_dir}, not {folder.path}")
    context = dataclasses.replace(context, run_dir=str(folder.path))
    if not resume:
        if folder.file(RunFolder.CHECKPOINTS).exists():
            raise RunError(
                f"{folder.path} already holds a run; resume it (--resume) or choose another folder"
            )
        spec.save(folder)
    config: dict[str, Any] = {"configurable": {"thread_id": spec.thread_id}}
    # Run-folder images are written by a writer thread; the checkpointer saves nothing
    # until every queued image is complete on disk (see gcr.agent.image_writer), and it
    # reads checkpoints strictly (see gcr.agent.checkpoints).
    store = folder.file(RunFolder.CHECKPOINTS)
    writer = ImageWriter()
    async with open_checkpointer(store, saver_class=BarrierSqliteSaver) as saver:
        assert isinstance(saver, BarrierSqliteSaver)
        saver.image_writer = writer
        try:
            with write_behind(writer):
                return await _drive(
                    builder, saver, folder, config, context, spec, resume, on_event, on_review, durability
                )
        finally:
            await asyncio.to_thread(writer.close)


async def _drive(
    builder: StateGraph[Any, Any, Any, Any],
    saver: BarrierSqliteSaver,
    folder: RunFolder,
    config: dict[str, Any],
    context: RefineContext,
    spec: RunSpec,
    resume: bool,
    on_event: EventHandler | None,
    on_review: ReviewHandler | None,
    durability: Durability,
) -> RunOutcome:
    graph = builder.compile(checkpointer=saver, name=GRAPH_NAME)
    payload: Any = {"prompt": spec.prompt, "source_images": list(spec.source_images)}
    if resume:
        store = folder.file(RunFolder.CHECKPOINTS)
        try:
            snapshot = await graph.aget_state(config)
        except sqlite3.Error as exc:
            raise damaged_store(store, exc) from None
        if not snapshot.values:
            logger.info("no checkpoint in %s yet; starting the run from the beginning", folder.path)
        elif _finished(snapshot):
            _rewrite_missing_trajectory(folder, snapshot.values)
            return RunOutcome(_located(snapshot.values, folder), finished=True)
        elif await _retry_skipped_candidates(graph, config, snapshot):
            payload = None
        else:
            pending = _pending_review(snapshot)
            if pending is not None:
                if on_review is None:
                    values = _located(snapshot.values, folder)
                    return RunOutcome(values, finished=False, pending_review=pending)
                payload = Command(resume=await _answer(on_review, pending))
            else:
                payload = None
    while True:
        review: dict[str, Any] | None = None
        async for mode, chunk in graph.astream(
            payload, config, context=context, stream_mode=["custom", "updates"], durability=durability
        ):
            if mode == "custom":
                if on_event is not None:
                    on_event(chunk)
            elif isinstance(chunk, dict) and "__interrupt__" in chunk:
                review = chunk["__interrupt__"][0].value
        snapshot = await graph.aget_state(config)
        if review is None:
            return RunOutcome(_located(snapshot.values, folder), finished=_finished(snapshot))
        if on_review is None:
            return RunOutcome(_located(snapshot.values, folder), finished=False, pending_review=review)
        payload = Command(resume=await _answer(on_review, review))


async def _retry_skipped_candidates(graph: Any, config: dict[str, Any], snapshot: Any) -> bool:
    """Set up a retry of a round that failed because none of its candidates could be critiqued.

    Such a round ends in ``decide`` raising, after the critique tasks saved their "skipped"
    records; resuming as it is would replay those records and fail the same way without a
    single new critic request. Instead the round's skipped candidates are dropped and the
    round is dispatched again as if ``launch`` had just run: ``dispatch`` sends only the
    candidates the round lacks, ``generate`` finds their images in the run folder, and
    ``critique`` asks the critic again. Scored candidates and finished rounds are kept.
    Returns False (nothing changed) for any other kind of stop.
    """
    failed = [task for task in snapshot.tasks if task.error is not None]
    if not failed or any(task.name != "decide" for task in failed):
        return False
    values = snapshot.values
    index = values.get("round")
    candidates = list(values.get("candidates") or [])
    kept = [c for c in candidates if not (c["round"] == index and c["status"] == "skipped")]
    if len(kept) == len(candidates):
        return False
    logger.info(
        "retrying the %d candidate(s) of round %s that could not be critiqued",
        len(candidates) - len(kept),
        index,
    )
    await graph.aupdate_state(config, {"candidates": Overwrite(kept)}, as_node="launch")
    return True


def _pending_review(snapshot: Any) -> dict[str, Any] | None:
    for task in snapshot.tasks:
        for item in task.interrupts:
            return item.value
    return None


async def _answer(handler: ReviewHandler, request: dict[str, Any]) -> Any:
    answer = handler(request)
    if inspect.isawaitable(answer):
        answer = await answer  # type: ignore[assignment]
    try:  # checked here, so a bad answer is a short error and the review stays open for a resume
        return ReviewAnswer.model_validate(answer).model_dump()
    except pydantic.ValidationError as exc:
        why = "; ".join(str(e.get("msg", e)) for e in exc.errors())
        raise InputError(
            f"the review answer cannot be used ({why}); resume the run to answer again"
        ) from None
