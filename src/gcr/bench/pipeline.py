"""Run the refine loop over a prompt set, pipelined, resumably, one shard per process.

Each prompt runs the very graph ``gcr refine`` runs (:func:`gcr.agent.build_graph`
through :func:`gcr.agent.runner.run_refine`, with its own run folder and SQLite
checkpointer). Many prompts run at once as asyncio tasks that share:

* one generator (the graph runs its calls one at a time on a dedicated
  thread: the GPU), timed by :class:`~gcr.bench.stages.TimedGenerator`, and
* one critic, behind a :class:`~gcr.bench.stages.BoundedCritic` (at most
  ``concurrency`` requests in flight).

While prompt A waits for its critique, prompt B's image is being generated, so
the generator never idles on the critic as long as enough prompts are in
flight (``in_flight``, default ``concurrency + 2``). A prompt's record is
appended to ``results.jsonl`` (and flushed) the moment its run finishes; a
rerun skips prompts with a record and resumes the others from their
checkpoints (see :mod:`gcr.bench.folder`).

Failures: a :class:`~gcr.errors.GCRError` from one prompt's run (a generator
error, no scorable candidate, ...) becomes a ``failed`` record and the next
rerun tries that prompt again. A critic that cannot be reached at all
(:class:`~gcr.errors.CriticUnavailableError`) stops the whole benchmark, since
every other prompt would fail the same way; everything finished is kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gcr.agent.components import Components
from gcr.agent.graph import build_graph
from gcr.agent.run_folder import RunFolder
from gcr.agent.runner import RunSpec, run_refine
from gcr.bench.baseline import baseline_record, baseline_spec, check_baseline
from gcr.bench.folder import SETTINGS_FILE, BenchFolder, Kind
from gcr.bench.prompt_records import Stopwatch, failure_record, refine_record
from gcr.bench.prompt_set import BenchCase, PromptSet
from gcr.bench.session_timing import SessionTiming
from gcr.bench.shard import ShardInfo
from gcr.bench.stages import BoundedCritic, StageClock, TimedGenerator
from gcr.errors import (
    ConfigError,
    CriticUnavailableError,
    GCRError,
    InputError,
    JudgeUnavailableError,
    RunError,
)
from gcr.io import atomic_file
from gcr.task import Task

logger = logging.getLogger(__name__)

#: Builds the run's collaborators from the template spec (``gcr.agent.components.load_components``).
ComponentLoader = Callable[[RunSpec, Task], Components]
#: ``on_result(kind, record)`` after each record is on disk.
ResultHandler = Callable[[Kind, dict[str, Any]], None]
#: ``on_event(case_id, event)`` for every progress event of every run (see :mod:`gcr.agent.events`).
EventHandler = Callable[[str, dict[str, Any]], None]

#: Settings of a refine run that do not change its results, left out of the folder's binding settings.
_NON_BINDING_CONTEXT = ("run_dir", "interactive", "write_report")


def default_loader(spec: RunSpec, task: Task) -> Components:
    from gcr.agent.components import load_components

    return load_components(spec, task=task)


@dataclass(frozen=True)
class BenchSettings:
    """How a benchmark runs (the refine settings themselves live in the :class:`RunSpec` template)."""

    #: Critic requests in flight at once.
    concurrency: int = 8
    #: Prompts whose runs are in progress at once; None: ``concurrency + 2``, enough to keep the
    #: generator busy while ``concurrency`` critiques are in flight.
    in_flight: int | None = None
    #: Only the first ``limit`` prompts of the set (before sharding).
    limit: int | None = None
    #: ``none`` or ``best-of-n`` (see :mod:`gcr.bench.baseline`).
    baseline: str = "none"
    shard: ShardInfo = field(default_factory=ShardInfo)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1 (got {self.concurrency})")
        if self.in_flight is not None and self.in_flight < 1:
            raise ConfigError(f"in_flight must be at least 1 (got {self.in_flight})")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be at least 1 (got {self.limit})")
        check_baseline(self.baseline)

    @property
    def prompts_in_flight(self) -> int:
        return self.in_flight if self.in_flight is not None else self.concurrency + 2


@dataclass
class BenchOutcome:
    """What one call of :func:`run_bench` did, and where the whole benchmark stands."""

    folder: BenchFolder
    #: Cases of the whole benchmark (after ``limit``) and of this shard.
    cases: list[BenchCase]
    shard_cases: list[BenchCase]
    #: Finished records of this shard's cases, including ones from earlier runs.
    results: dict[str, dict[str, Any]]
    baselines: dict[str, dict[str, Any]]
    ran: int = 0
    reused: int = 0
    failed: int = 0
    #: True when every case of the benchmark (all shards) has its records.
    complete: bool = False
    session: dict[str, Any] = field(default_factory=dict)


def binding_settings(prompt_set: PromptSet, template: RunSpec) -> dict[str, Any]:
    """What ties a benchmark folder to its results: the prompt set and every setting that changes them."""
    context = {k: v for k, v in template.context.to_dict().items() if k not in _NON_BINDING_CONTEXT}
    if not context.get("veto_judge"):
        # No veto: leave its settings out, so folders made before the veto existed still resume.
        context.pop("veto_judge", None)
        context.pop("veto_drop", None)
    return {
        "prompt_set": {"name": prompt_set.name, "digest": prompt_set.digest(), "cases": len(prompt_set)},
        "task": prompt_set.task.value,
        "refine": context,
        "generator": template.generator,
        "generator_kind": template.generator_kind,
        "refiner": template.refiner,
        "refiner_model": template.refiner_model,
    }


def case_spec(template: RunSpec, sources: list[str], case: BenchCase) -> RunSpec:
    """The run of one prompt: the template's settings with the case's prompt and source images."""
    context = dataclasses.replace(template.context, run_dir="", interactive=False)
    return dataclasses.replace(
        template, prompt=case.prompt, source_images=list(sources), context=context, thread_id="refine"
    )


async def run_bench(
    prompt_set: PromptSet,
    template: RunSpec,
    out_dir: str,
    settings: BenchSettings | None = None,
    *,
    load: ComponentLoader = default_loader,
    on_start: Callable[[int, int], None] | None = None,
    on_result: ResultHandler | None = None,
    on_event: EventHandler | None = None,
) -> BenchOutcome:
    """Run (or continue) the benchmark of ``prompt_set`` in ``out_dir``; see the module docstring.

    ``template`` is a :class:`RunSpec` without a prompt: the refine settings and the
    collaborators, as ``gcr refine`` builds it. Every model is loaded before anything is
    written, so a model that fails to load leaves no folder and no ``bench.json`` behind.
    ``on_start(runs_to_do, records_reused)`` is called once the models are loaded and the
    work is known. The running loop's default executor is replaced by one large enough for
    every waiting generation (each waits in a worker thread).
    """
    settings = settings or BenchSettings()
    folder = BenchFolder(out_dir)
    binding = binding_settings(prompt_set, template)
    existing = (folder.path / SETTINGS_FILE).is_file()
    if existing:
        folder.check_settings(binding)  # other settings than the folder's fail before any model loads
    cases = list(prompt_set.head(settings.limit))
    mine = settings.shard.select(cases)
    want_baseline = settings.baseline == "best-of-n"
    clock = StageClock()
    session = SessionTiming(folder, settings.shard, clock)
    components = None
    if _has_work(folder, mine, want_baseline):
        placed = _place_generator(template, settings.shard)
        components = await asyncio.to_thread(load, placed, prompt_set.task)
        session.loaded()
    try:
        if components is not None:
            _check_task(components, prompt_set.task)
        folder.path.mkdir(parents=True, exist_ok=True)
        if not existing:
            folder.check_settings(binding)
    except BaseException:
        if components is not None:
            await components.aclose()
        raise
    store, done = folder.open_store("results", settings.shard)
    base_store, base_done = folder.open_store("baseline", settings.shard)
    todo = [c for c in mine if c.id not in done or (want_baseline and c.id not in base_done)]
    runs = sum(c.id not in done for c in todo) + sum(want_baseline and c.id not in base_done for c in todo)
    outcome = BenchOutcome(folder, cases, mine, results={}, baselines={})
    outcome.reused = sum(c.id in done for c in mine)
    if on_start is not None:
        on_start(runs, outcome.reused)
    try:
        if todo and components is not None:
            await _run_cases(
                todo,
                prompt_set.task,
                template,
                settings,
                folder,
                clock,
                session,
                outcome,
                components,
                stores={"results": (store, done), "baseline": (base_store, base_done)},
                on_result=on_result,
                on_event=on_event,
            )
        elif components is not None:
            await components.aclose()
    finally:
        store.close()
        base_store.close()
        outcome.session = session.write(final=True)
    outcome.results = {c.id: done[c.id] for c in mine if c.id in done}
    outcome.baselines = {c.id: base_done[c.id] for c in mine if c.id in base_done}
    finished = folder.records("results")
    base_finished = folder.records("baseline") if want_baseline else {}
    outcome.complete = all(
        finished.get(c.id, {}).get("status") == "ok"
        and (not want_baseline or base_finished.get(c.id, {}).get("status") == "ok")
        for c in cases
    )
    return outcome


def _check_task(components: Components, task: Task) -> None:
    generator = components.generator
    if Task.parse(generator.task) is not task:
        raise InputError(
            f"the prompt set holds {task.value} cases but the generator {generator.model_id} is for "
            f"{Task.parse(generator.task).value}: choose a generator for {task.value}"
        )


def _has_work(folder: BenchFolder, cases: list[BenchCase], want_baseline: bool) -> bool:
    """Whether any of ``cases`` still needs a run, judged from the folder's records (read-only)."""

    def ok(kind: Kind) -> set[str]:
        return {k for k, r in folder.records(kind).items() if r.get("status") == "ok"}

    finished, base = ok("results"), ok("baseline") if want_baseline else set()
    return any(c.id not in finished or (want_baseline and c.id not in base) for c in cases)


async def _run_cases(
    todo: list[BenchCase],
    task: Task,
    template: RunSpec,
    settings: BenchSettings,
    folder: BenchFolder,
    clock: StageClock,
    session: SessionTiming,
    outcome: BenchOutcome,
    components: Components,
    *,
    stores: dict[str, Any],
    on_result: ResultHandler | None,
    on_event: EventHandler | None,
) -> None:
    template = _place_generator(template, settings.shard)
    _widen_critic_backend(components.critic, settings.concurrency)
    generator = TimedGenerator(components.generator, clock)
    critic = BoundedCritic(components.critic, settings.concurrency, clock)
    try:
        folder.check_settings({"critic": components.critic.model_id})
        builder = build_graph(
            generator=generator,
            critic=critic,
            refiner=components.refiner,
            cache=components.cache,
            max_parallel_generations=1,
            veto=getattr(components, "veto", None),
        )
        slots = asyncio.Semaphore(settings.prompts_in_flight)

        def record(kind: Kind, rec: dict[str, Any]) -> None:
            store, finished = stores[kind]
            store.append(rec)
            if rec["status"] == "ok":
                finished[rec["id"]] = rec
                outcome.ran += kind == "results"
            else:
                outcome.failed += 1
            session.count(kind, rec)
            if on_result is not None:
                on_result(kind, rec)

        async def one(case: BenchCase) -> None:
            async with slots:
                await _run_case(case, builder, template, settings, folder, stores, record, on_event)

        tasks = [asyncio.create_task(one(case), name=f"bench:{case.id}") for case in todo]
        try:
            await _gather_or_stop(tasks)
        finally:
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await components.aclose()


async def _gather_or_stop(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for every task; at the first one that raises, cancel the rest and raise its error."""
    pending = set(tasks)
    while pending:
        finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
        for task in finished:
            if not task.cancelled() and task.exception() is not None:
                for other in pending:
                    other.cancel()
                raise task.exception()  # type: ignore[misc]


async def _run_case(
    case: BenchCase,
    builder: Any,
    template: RunSpec,
    settings: BenchSettings,
    folder: BenchFolder,
    stores: dict[str, Any],
    record: Callable[[Kind, dict[str, Any]], None],
    on_event: EventHandler | None,
) -> None:
    _, done = stores["results"]
    _, base_done = stores["baseline"]
    events = None if on_event is None else (lambda e: on_event(case.id, e))
    watch = Stopwatch()
    try:
        sources = await asyncio.to_thread(_materialize_sources, case, folder)
        spec = case_spec(template, sources, case)
        if case.id not in done:
            values = await _run_graph(builder, RunFolder(folder.run_dir(case.id)), spec, events)
            record("results", refine_record(case, values, folder.path, watch()))
        if settings.baseline == "best-of-n" and case.id not in base_done:
            watch = Stopwatch()
            generations = int(done[case.id]["generations"])
            values = await _run_graph(
                builder, RunFolder(folder.baseline_dir(case.id)), baseline_spec(spec, generations), events
            )
            record("baseline", baseline_record(case, values, folder.path, watch))
    except (CriticUnavailableError, JudgeUnavailableError):
        raise  # every other prompt would fail the same way (a veto judge is as vital as the critic)
    except GCRError as exc:
        kind: Kind = "results" if case.id not in done else "baseline"
        logger.warning("prompt %s failed: %s", case.id, exc)
        record(kind, failure_record(case, exc, watch()))


async def _run_graph(builder: Any, run_folder: RunFolder, spec: RunSpec, on_event: Any) -> dict[str, Any]:
    resume = run_folder.file(RunFolder.SETTINGS).is_file()
    outcome = await run_refine(builder, run_folder, spec, resume=resume, on_event=on_event)
    if not outcome.finished:
        raise RunError(f"the run in {run_folder.path} paused before finishing")
    return outcome.values


def _widen_critic_backend(critic: Any, concurrency: int) -> None:
    """Let an HTTP critic backend (its own limit: 16 by default) send ``concurrency`` requests at once.

    The backend makes its request semaphore from ``max_concurrency`` on first use in an
    event loop, so raising it before the run starts takes effect; the bounded critic
    around it keeps the limit at ``concurrency``.
    """
    backend = getattr(critic, "backend", None)
    limit = getattr(backend, "max_concurrency", None)
    if isinstance(limit, int) and limit < concurrency:
        logger.info("raising the critic backend's request limit from %d to %d", limit, concurrency)
        backend.max_concurrency = concurrency  # type: ignore[union-attr]


def _materialize_sources(case: BenchCase, folder: BenchFolder) -> list[str]:
    """Write the case's source images as PNG files in the benchmark folder (once) and return their paths."""
    paths = []
    for index, ref in enumerate(case.sources):
        target = folder.input_path(case.id, index)
        if not target.is_file():
            with atomic_file(target) as fh:
                ref.load().save(fh, format="PNG")
        paths.append(str(target))
    return paths


def _place_generator(template: RunSpec, shard: ShardInfo) -> RunSpec:
    """Put a sharded process's generator on its own device (``cuda:LOCAL_RANK``)."""
    if not shard.sharded or template.generator_kind != "diffusers":
        return template
    options = dict(template.generator_options)
    device = shard.device(options.get("device"))
    if device is not None:
        options["device"] = device
    return dataclasses.replace(template, generator_options=options)
