"""Rewards for diffusion RL: plain callables and the critic, combined by weight.

A reward is any callable ``(images, prompts, sources) -> list[float | None]``
(the TRL convention, with ``sources`` one list of source images per sample);
``None`` marks a sample the reward could not score. :class:`CriticReward` is
such a callable that also reports each critique dimension on its own.
:class:`CombinedReward` sums the rewards with their weights; a sample that any
reward failed on gets no total (it is left out of the loss) and the failure is
counted per reward, never turned into a zero.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import Image

from gcr.errors import ConfigError, CriticError

if TYPE_CHECKING:
    from gcr.critic.critic import Critic
    from gcr.critic.scoring import RewardSpec
    from gcr.training.rl.config import RewardConfig

logger = logging.getLogger(__name__)

Images = Sequence[Image.Image]
Sources = Sequence[Sequence[Image.Image]]
RewardFn = Callable[[Images, Sequence[str], Sources], Sequence[float | None]]


@dataclass
class RewardResult:
    """One reward's output for a batch: values, extra per-sample series to log, failure reasons."""

    values: list[float | None]
    details: dict[str, list[float | None]] = field(default_factory=dict)
    errors: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.errors:
            self.errors = [None if v is not None else "no score" for v in self.values]


class DetailedReward(Protocol):
    """A reward that can also say why a sample failed and report sub-scores."""

    def evaluate(self, images: Images, prompts: Sequence[str], sources: Sources) -> RewardResult: ...


def brightness(images: Images, prompts: Sequence[str], sources: Sources) -> list[float]:
    """Mean pixel brightness in [0, 1]: a reward any model can learn, for smoke tests and pipeline checks."""
    return [float(np.asarray(img.convert("L"), dtype=np.float64).mean() / 255.0) for img in images]


class CriticReward:
    """The critic as a reward: per-dimension scores and their weighted, normalized combination.

    Every image is critiqued concurrently (``asyncio.gather`` under a semaphore of
    ``max_concurrency``) on one event loop, in a thread of its own, that lives as long
    as this object, so a served critic (vLLM on its own GPUs) sees many requests at
    once, and :meth:`submit` lets a trainer score one batch while it samples the next. The reward of a
    sample is :func:`gcr.critic.scoring.normalized_reward` of its critique under
    ``spec``; raw 1-4 scores of every dimension are reported as details. A
    :class:`~gcr.errors.CriticError` for a sample (unreachable server, unreadable
    answer, no scorable dimension) makes that sample fail; other errors propagate.
    """

    def __init__(
        self,
        critic: Critic | Any,
        *,
        spec: RewardSpec | None = None,
        max_concurrency: int = 32,
        task: str | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ConfigError("max_concurrency must be at least 1")
        self.critic = critic
        self.spec = spec
        self.max_concurrency = max_concurrency
        self.task = task
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._gate: asyncio.Semaphore | None = None

    def __call__(self, images: Images, prompts: Sequence[str], sources: Sources) -> list[float | None]:
        return self.evaluate(images, prompts, sources).values

    def evaluate(self, images: Images, prompts: Sequence[str], sources: Sources) -> RewardResult:
        return self.submit(images, prompts, sources).result()

    def submit(self, images: Images, prompts: Sequence[str], sources: Sources) -> Future[RewardResult]:
        """Start critiquing a batch and return at once; the future holds its :class:`RewardResult`.

        Batches submitted while others run share the event loop and the concurrency limit,
        so a trainer can score one rollout batch while it samples the next.
        """
        _check_lengths(images, prompts, sources)
        loop = self._ensure_loop()
        done: Future[RewardResult] = Future()
        job = asyncio.run_coroutine_threadsafe(self._critique_all(list(images), list(prompts), sources), loop)

        def finish(f: Future[list[Any]]) -> None:
            try:
                done.set_result(self._to_result(f.result()))
            except BaseException as exc:  # handed to whoever waits on the result
                done.set_exception(exc)

        job.add_done_callback(finish)
        return done

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        # One event loop in its own thread for the life of this reward: the critic's HTTP
        # connections stay bound to it, and callers never block on it except in result().
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="gcr-critic-reward", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    async def _critique_all(self, images: Images, prompts: Sequence[str], sources: Sources) -> list[Any]:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.max_concurrency)
        gate = self._gate

        async def one(image: Image.Image, prompt: str, srcs: Sequence[Image.Image]) -> Any:
            async with gate:
                try:
                    return await self.critic.acritique(prompt, image, sources=tuple(srcs), task=self.task)
                except CriticError as exc:
                    return exc

        return await asyncio.gather(*(one(i, p, s) for i, p, s in zip(images, prompts, sources, strict=True)))

    def _to_result(self, outcomes: list[Any]) -> RewardResult:
        from gcr.critic.schema import Dimension
        from gcr.critic.scoring import normalized_reward

        values: list[float | None] = []
        errors: list[str | None] = []
        details: dict[str, list[float | None]] = {d.value: [] for d in Dimension}
        for outcome in outcomes:
            scores: dict[str, float | None] = {}
            if isinstance(outcome, CriticError):
                values.append(None)
                errors.append(f"{type(outcome).__name__}: {_first_line(outcome)}")
            else:
                scores = outcome.scores
                try:
                    values.append(normalized_reward(outcome, self.spec))
                    errors.append(None)
                except CriticError as exc:
                    values.append(None)
                    errors.append(f"{type(exc).__name__}: {_first_line(exc)}")
            for key, series in details.items():
                series.append(scores.get(key))
        details = {k: v for k, v in details.items() if any(x is not None for x in v)}
        return RewardResult(values=values, details=details, errors=errors)

    def close(self) -> None:
        """Close the critic's connections and stop the event loop."""
        loop = self._ensure_loop()
        aclose = getattr(self.critic, "aclose", None)
        try:
            if aclose is not None:
                asyncio.run_coroutine_threadsafe(aclose(), loop).result()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join()
            loop.close()
            self._loop = self._thread = self._gate = None


@dataclass
class RewardBatch:
    """The combined reward of a batch and everything to log about it."""

    total: list[float | None]
    per_reward: dict[str, list[float | None]]
    details: dict[str, list[float | None]]
    failures: dict[str, int]
    failure_kinds: Counter[str]

    @property
    def failed(self) -> int:
        return sum(v is None for v in self.total)

    @classmethod
    def concat(cls, batches: Sequence[RewardBatch]) -> RewardBatch:
        """One batch from several (e.g. gathered from every process), samples in order."""
        if not batches:
            raise ValueError("nothing to concatenate")

        def join(attr: str) -> dict[str, list[float | None]]:
            keys = dict.fromkeys(k for b in batches for k in getattr(b, attr))
            return {
                k: [v for b in batches for v in getattr(b, attr).get(k, [None] * len(b.total))] for k in keys
            }

        failures: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        for b in batches:
            failures.update(b.failures)
            kinds.update(b.failure_kinds)
        return cls(
            total=[v for b in batches for v in b.total],
            per_reward=join("per_reward"),
            details=join("details"),
            failures=dict(failures),
            failure_kinds=kinds,
        )

    def as_array(self) -> np.ndarray:
        """The totals as floats, NaN where no reward could be computed."""
        return np.array([math.nan if v is None else v for v in self.total], dtype=np.float64)


@dataclass
class WeightedReward:
    name: str
    weight: float
    fn: RewardFn | DetailedReward


class CombinedReward:
    """Weighted sum of named rewards; each reward and each critic dimension is reported on its own."""

    def __init__(self, rewards: Sequence[WeightedReward]) -> None:
        if not rewards:
            raise ConfigError("at least one reward is needed")
        names = [r.name for r in rewards]
        if len(set(names)) != len(names):
            raise ConfigError(f"reward names must be unique, got {names}")
        self.rewards = list(rewards)

    def __call__(self, images: Images, prompts: Sequence[str], sources: Sources) -> RewardBatch:
        return self.submit(images, prompts, sources).result()

    def submit(self, images: Images, prompts: Sequence[str], sources: Sources) -> PendingRewards:
        """Start the rewards that can run in the background (the critic) and return at once.

        :meth:`PendingRewards.result` waits for them, computes the plain callables and
        combines everything exactly as calling this object does.
        """
        _check_lengths(images, prompts, sources)
        started: dict[str, Future[RewardResult]] = {}
        for reward in self.rewards:
            submit = getattr(reward.fn, "submit", None)
            if callable(submit):
                started[reward.name] = submit(images, prompts, sources)
        return PendingRewards(self, list(images), list(prompts), list(sources), started)

    def _combine(
        self,
        images: Images,
        prompts: Sequence[str],
        sources: Sources,
        started: Mapping[str, Future[RewardResult]],
    ) -> RewardBatch:
        n = len(images)
        totals: list[float | None] = [0.0] * n
        per_reward: dict[str, list[float | None]] = {}
        details: dict[str, list[float | None]] = {}
        failures: dict[str, int] = {}
        kinds: Counter[str] = Counter()
        for reward in self.rewards:
            future = started.get(reward.name)
            result = future.result() if future is not None else _evaluate(reward.fn, images, prompts, sources)
            if len(result.values) != n:
                raise ConfigError(
                    f"reward {reward.name!r} returned {len(result.values)} values for {n} images"
                )
            values = [_finite_or_none(v, reward.name) for v in result.values]
            per_reward[reward.name] = values
            for key, series in result.details.items():
                details[f"{reward.name}/{key}"] = list(series)
            failed = [i for i, v in enumerate(values) if v is None]
            failures[reward.name] = len(failed)
            for i in failed:
                reason = result.errors[i] if i < len(result.errors) and result.errors[i] else "no score"
                kinds[f"{reward.name}/{reason.split(':')[0].strip()}"] += 1
            if failed:
                first = result.errors[failed[0]] if failed[0] < len(result.errors) else None
                logger.warning(
                    "reward %r failed on %d of %d samples (left out of the loss); first: %s",
                    reward.name,
                    len(failed),
                    n,
                    first or "no score",
                )
            for i, v in enumerate(values):
                current = totals[i]
                totals[i] = None if (v is None or current is None) else current + reward.weight * v
        return RewardBatch(
            total=totals, per_reward=per_reward, details=details, failures=failures, failure_kinds=kinds
        )

    def empty_batch(self) -> RewardBatch:
        """The result for no samples (a process with nothing to score still joins the gather)."""
        names = [r.name for r in self.rewards]
        return RewardBatch(
            total=[],
            per_reward={n: [] for n in names},
            details={},
            failures=dict.fromkeys(names, 0),
            failure_kinds=Counter(),
        )

    def close(self) -> None:
        for reward in self.rewards:
            close = getattr(reward.fn, "close", None)
            if callable(close):
                close()


class PendingRewards:
    """Rewards of one batch being computed; :meth:`result` gives the :class:`RewardBatch`."""

    def __init__(
        self,
        owner: CombinedReward,
        images: Images,
        prompts: Sequence[str],
        sources: Sources,
        started: Mapping[str, Future[RewardResult]],
    ) -> None:
        self._owner = owner
        self._inputs = (images, prompts, sources)
        self._started = started
        self._batch: RewardBatch | None = None

    def __len__(self) -> int:
        return len(self._inputs[0])

    def result(self) -> RewardBatch:
        """Wait for the background rewards, compute the rest, combine (once)."""
        if self._batch is None:
            self._batch = self._owner._combine(*self._inputs, self._started)
            self._inputs = ((), (), ())  # the images are no longer needed here
        return self._batch


def _evaluate(fn: Any, images: Images, prompts: Sequence[str], sources: Sources) -> RewardResult:
    evaluate = getattr(fn, "evaluate", None)
    if callable(evaluate):
        return evaluate(images, prompts, sources)
    return RewardResult(values=list(fn(images, prompts, sources)))


def _finite_or_none(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"reward {name!r} returned {value!r}; rewards must be numbers or None") from None
    if not math.isfinite(number):
        raise ConfigError(f"reward {name!r} returned {number}; return None for a sample it cannot score")
    return number


def _check_lengths(images: Images, prompts: Sequence[str], sources: Sources) -> None:
    if not (len(images) == len(prompts) == len(sources)):
        raise ValueError(
            f"images, prompts and sources must have one entry per sample ({len(images)}, {len(prompts)}, "
            f"{len(sources)})"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- building from config


def import_object(path: str) -> Any:
    """Import ``'package.module:attribute'`` (attribute may be dotted)."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{path!r} must look like 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r} for {path!r}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def build_reward(config: RewardConfig, *, critic_loader: Callable[..., Any] | None = None) -> WeightedReward:
    """Make the reward one :class:`RewardConfig` describes."""
    if config.function is not None:
        obj = import_object(config.function)
        fn = obj(**config.kwargs) if config.kwargs else obj
        if not callable(fn):
            raise ConfigError(f"reward {config.name!r}: {config.function} is not callable")
        return WeightedReward(config.name, config.weight, fn)
    from gcr.critic.scoring import RewardSpec

    spec = None
    if config.dimensions is not None:
        spec = RewardSpec(dimensions=tuple(config.dimensions), weights=dict(config.dimensions))
    if critic_loader is None:
        from gcr.critic.loading import load_critic as critic_loader
    # The spec goes to the reward alone: the critic writes critiques, the reward scores them.
    critic = critic_loader(config.critic, model=config.critic_model, max_concurrency=config.max_concurrency)
    reward = CriticReward(critic, spec=spec, max_concurrency=config.max_concurrency, task=config.task)
    return WeightedReward(config.name, config.weight, reward)


def build_rewards(configs: Sequence[RewardConfig], **kwargs: Any) -> CombinedReward:
    return CombinedReward([build_reward(c, **kwargs) for c in configs])


def summarize(batch: RewardBatch) -> Mapping[str, float]:
    """Means (over scored samples) and failure counts for logging."""
    out: dict[str, float] = {}

    def mean(values: Sequence[float | None]) -> float:
        scored = [v for v in values if v is not None]
        return float(np.mean(scored)) if scored else math.nan

    out["reward/mean"] = mean(batch.total)
    out["reward/failed_samples"] = float(batch.failed)
    for name, values in batch.per_reward.items():
        out[f"reward/{name}"] = mean(values)
        out[f"reward/{name}/failures"] = float(batch.failures[name])
    for name, values in batch.details.items():
        out[f"reward/{name}"] = mean(values)
    return out
