"""The critic: renders the prompt, asks a backend, parses the answer into a typed critique.

Everything between the images and the :class:`~gcr.critic.schema.Critique` lives
here, not in the backends, so an HTTP server and an in-process model produce
identical critiques for identical model text. When an answer cannot be parsed
the critic asks again, a bounded number of times, with the required layout
restated; an answer that still cannot be read raises
:class:`~gcr.errors.CritiqueParseError` carrying the raw text (never a silent
score of zero).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from PIL import Image

from gcr.critic.backends.base import ChatBackend, ChatRequest, SamplingParams, is_truncated
from gcr.critic.parser import parse_critique, parse_pairwise
from gcr.critic.schema import TASK_DIMENSIONS, Critique, PairwiseCritique
from gcr.critic.templates import CritiqueTemplate, load_template, render_pairwise, render_pointwise
from gcr.errors import ConfigError, CritiqueParseError
from gcr.image_input import ImageInput
from gcr.task import Task

logger = logging.getLogger(__name__)

Mode = Literal["pointwise", "pairwise"]
TemplateSource = str | Path | CritiqueTemplate
_R = TypeVar("_R", Critique, PairwiseCritique)
_T = TypeVar("_T")


class Critic:
    """Critiques images with any :class:`ChatBackend`.

    Args:
        backend: what writes the critique text (HTTP server or in-process model).
        sampling: temperature and token limit; defaults to the released model's reward
            setting (temperature 0.1, 2048 tokens).
        templates: custom prompt templates keyed by ``(mode, task)``, e.g.
            ``{("pointwise", "t2i"): "my_prompt.md"}``; the built-ins fill the rest.
        max_reasks: how many times an unreadable answer is asked again (0 disables).

    A critic writes critiques; it does not score them. The reward of a critique is
    :func:`gcr.critic.scoring.normalized_reward` under the reward spec of whoever scores
    (a refine run's :class:`~gcr.agent.context.RefineContext`, a judge, an RL reward),
    so one critic can serve runs that weigh the dimensions differently.
    """

    def __init__(
        self,
        backend: ChatBackend,
        *,
        sampling: SamplingParams | None = None,
        templates: Mapping[tuple[str, Task | str], TemplateSource] | None = None,
        max_reasks: int = 1,
    ) -> None:
        if max_reasks < 0:
            raise ConfigError(f"max_reasks must be 0 or more, got {max_reasks}")
        self.backend = backend
        self.sampling = sampling or SamplingParams()
        self.max_reasks = max_reasks
        self._templates: dict[tuple[str, Task], CritiqueTemplate] = {}
        for (mode, task), source in (templates or {}).items():
            key = (_check_mode(mode), Task.parse(task))
            self._templates[key] = _load_override(key, source)
        self._runner: asyncio.Runner | None = None

    #: The async methods take :class:`~gcr.image_input.ImageInput` as well as PIL images, so
    #: callers holding encoded bytes or a file hand them over without decoding.
    accepts_image_inputs = True

    def __repr__(self) -> str:
        return f"Critic(backend={self.backend!r}, sampling={self.sampling!r}, max_reasks={self.max_reasks})"

    # -- identity ----------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def template(self, mode: Mode, task: Task | str) -> CritiqueTemplate:
        """The template used for ``mode`` and ``task`` (a custom one if given, else the built-in)."""
        key = (_check_mode(mode), Task.parse(task))
        if key not in self._templates:
            self._templates[key] = load_template(key[0], key[1])
        return self._templates[key]

    def template_digest(self, mode: Mode, task: Task | str) -> str:
        return self.template(mode, task).digest

    def cache_identity(self, mode: Mode, task: Task | str) -> str:
        """A digest of everything besides the inputs that decides a critique: model, prompt, sampling.

        Two critics with the same identity give the same critique for the same request
        and images (up to sampling noise), so caches key on it.
        """
        s = self.sampling
        payload = {
            "model": self.model_id,
            "template": self.template_digest(mode, task),
            "sampling": {"temperature": s.temperature, "max_tokens": s.max_tokens, "top_p": s.top_p,
                         "extra": s.extra},
            "max_pixels": getattr(self.backend, "max_pixels", None),
        }
        # A server that applies the pixel budget itself resamples differently from gcr's
        # client-side downscaling, so its critiques get their own keys. The client default
        # adds nothing, which keeps every key made before this setting existed.
        if getattr(self.backend, "image_resize", "client") != "client":
            payload["image_resize"] = self.backend.image_resize  # type: ignore[attr-defined]
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    # -- async API ---------------------------------------------------------------
    async def acritique(
        self,
        prompt: str,
        image: Image.Image | ImageInput,
        *,
        sources: Sequence[Image.Image | ImageInput] = (),
        task: Task | str | None = None,
    ) -> Critique:
        """Judge one image made for ``prompt`` (an edit of ``sources`` when they are given)."""
        resolved = _resolve_task(task, sources)
        request = render_pointwise(self.template("pointwise", resolved), prompt, image, sources)
        return await self._ask(request, "pointwise", resolved, parse_critique)

    async def acompare(
        self,
        prompt: str,
        image_a: Image.Image | ImageInput,
        image_b: Image.Image | ImageInput,
        *,
        sources: Sequence[Image.Image | ImageInput] = (),
        task: Task | str | None = None,
    ) -> PairwiseCritique:
        """Compare candidate A with candidate B for ``prompt`` in one request."""
        resolved = _resolve_task(task, sources)
        request = render_pairwise(self.template("pairwise", resolved), prompt, image_a, image_b, sources)
        return await self._ask(request, "pairwise", resolved, parse_pairwise)

    async def _ask(
        self, request: ChatRequest, mode: Mode, task: Task, parse: Callable[[str, Task], _R]
    ) -> _R:
        current = request
        for attempt in range(self.max_reasks + 1):
            answer = await self.backend.complete(current, self.sampling)
            cut_off = is_truncated(answer)
            text = str(answer)
            try:
                result = parse(text, task)
            except CritiqueParseError as exc:
                if cut_off:
                    raise CritiqueParseError(
                        f"the critic's answer was cut off at max_tokens={self.sampling.max_tokens} before "
                        "any score; raise the token limit (--max-tokens)",
                        text,
                    ) from None
                if attempt < self.max_reasks:
                    logger.warning(
                        "critic answer could not be parsed (%s); asking again with the layout restated "
                        "(re-ask %d of %d)", _first_line(exc), attempt + 1, self.max_reasks,
                    )
                    current = _with_layout_reminder(request, mode, task)
                    continue
                tries = f"after {attempt} re-ask(s)" if attempt else "and re-asking is disabled"
                raise CritiqueParseError(
                    f"the critic's answer has no readable critique {tries}", text
                ) from None
            return self._finish(result, cut_off, attempt)
        raise AssertionError("unreachable: the loop returns or raises")

    def _finish(self, result: _R, cut_off: bool, attempt: int) -> _R:
        warnings = list(result.warnings)
        if attempt:
            warnings.append(f"the first answer could not be parsed; this critique is from re-ask {attempt}")
        if cut_off and not result.truncated:
            warnings.append(
                f"the answer was cut off at max_tokens={self.sampling.max_tokens}; "
                "later sections may be missing"
            )
        if warnings == result.warnings and (result.truncated or not cut_off):
            return result
        return result.model_copy(update={"warnings": warnings, "truncated": result.truncated or cut_off})

    async def aclose(self) -> None:
        await self.backend.aclose()

    async def __aenter__(self) -> Critic:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- sync conveniences ---------------------------------------------------------
    def critique(
        self,
        prompt: str,
        image: Image.Image,
        *,
        sources: Sequence[Image.Image] = (),
        task: Task | str | None = None,
    ) -> Critique:
        """Blocking :meth:`acritique`, for code without an event loop."""
        return self._run_sync(self.acritique(prompt, image, sources=sources, task=task), "critique")

    def compare(
        self,
        prompt: str,
        image_a: Image.Image,
        image_b: Image.Image,
        *,
        sources: Sequence[Image.Image] = (),
        task: Task | str | None = None,
    ) -> PairwiseCritique:
        """Blocking :meth:`acompare`, for code without an event loop."""
        return self._run_sync(self.acompare(prompt, image_a, image_b, sources=sources, task=task), "compare")

    def close(self) -> None:
        """Blocking :meth:`aclose`; also ends the event loop the sync calls ran on."""
        runner, self._runner = self._runner, None
        if runner is None:
            asyncio.run(self.aclose())
            return
        try:
            runner.run(self.aclose())
        finally:
            runner.close()

    def __enter__(self) -> Critic:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run_sync(self, coro: Coroutine[Any, Any, _T], name: str) -> _T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise RuntimeError(
                f"Critic.{name}() blocks and cannot run inside a running event loop; "
                f"use `await critic.a{name}(...)` there"
            )
        # One loop for all sync calls, so the backend's connections stay usable between them.
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(coro)


def _check_mode(mode: str) -> Mode:
    if mode not in ("pointwise", "pairwise"):
        raise ConfigError(f"unknown critique mode {mode!r}: use 'pointwise' or 'pairwise'")
    return mode  # type: ignore[return-value]


def _load_override(key: tuple[Mode, Task], source: TemplateSource) -> CritiqueTemplate:
    mode, task = key
    if isinstance(source, CritiqueTemplate):
        if (source.mode, source.task) != key:
            raise ConfigError(
                f"template {source.name!r} is a {source.mode} {source.task.value} template but was given "
                f"for {mode} {task.value}"
            )
        return source
    return load_template(mode, task, source)


def _resolve_task(task: Task | str | None, sources: Sequence[Image.Image | ImageInput]) -> Task:
    if task is None:
        return Task.EDIT if len(sources) else Task.T2I
    return Task.parse(task)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def layout_reminder(mode: Mode, task: Task) -> str:
    """A short instruction restating the answer layout, appended when re-asking."""
    if mode == "pointwise":
        per_dim = "'## Justification: ...' and '## Score: <a number from 1 to 4, or N/A>'"
    else:
        per_dim = (
            "'## Justification: ...', '## Score A: <1-4>', '## Score B: <1-4>' and "
            "'## Winner: Image A, Image B or Tie'"
        )
    dims = "; ".join(f"'{i}. {d.header}:'" for i, d in enumerate(TASK_DIMENSIONS[task], start=1))
    tail = (
        "'# Summary: ...', '# User Request Refinement:', '## Refinement Comments: ...' and "
        "'## Refined Request: ...'"
        if mode == "pointwise"
        else "'# Summary: ...'"
    )
    return (
        "\n\nYour previous answer did not follow the required layout, so it could not be read. "
        "Answer again using exactly these markdown headers, in this order: '# User Request Analysis', "
        f"'# Detailed Judgement', then for each of {dims} the lines {per_dim}; then {tail}."
    )


def _with_layout_reminder(request: ChatRequest, mode: Mode, task: Task) -> ChatRequest:
    parts = list(request.parts)
    reminder = layout_reminder(mode, task)
    if parts and isinstance(parts[-1], str):
        parts[-1] = parts[-1] + reminder
    else:
        parts.append(reminder.lstrip())
    return ChatRequest(system=request.system, parts=tuple(parts))
