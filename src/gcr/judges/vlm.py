"""Rubric judges: any OpenAI-compatible vision-language model (or a local one) grading with a rubric.

The model is reached through the critic's own backends
(:func:`gcr.critic.loading.load_backend`): an ``http(s)://`` URL uses the
:class:`openai.AsyncOpenAI` client with its retries, timeouts and a request
limit, exactly like the critic; a folder or Hugging Face id loads the model
in-process. The rubric (:mod:`gcr.judges.rubric`) says what to ask and how the
answers combine. Each question of a rubric is one request; the questions of
one image are asked concurrently. An answer that cannot be read is asked again
once with the format restated, then reported as a
:class:`~gcr.errors.JudgeResponseError` carrying the raw text, never as 0.

Specs::

    vlm:URL_OR_MODEL,rubric=viescore|imgedit|PATH,model=NAME,temperature=T,...
    viescore:URL_OR_MODEL,...    (the same with rubric=viescore)
    imgedit:URL_OR_MODEL,...     (the same with rubric=imgedit)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from PIL import Image

from gcr.critic.backends.base import ChatBackend, ChatRequest, SamplingParams, is_truncated
from gcr.critic.defaults import API_KEY_ENV, DEFAULT_MAX_PIXELS, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_S
from gcr.errors import (
    ConfigError,
    CriticError,
    CriticUnavailableError,
    InputError,
    JudgeError,
    JudgeResponseError,
    JudgeUnavailableError,
)
from gcr.judges.base import JudgeResult, Options
from gcr.judges.rubric import Question, Rubric, answer_format, load_rubric
from gcr.task import Task

logger = logging.getLogger(__name__)

#: Requests in flight at once from one rubric judge's HTTP backend.
DEFAULT_JUDGE_CONCURRENCY = 8


class RubricJudge:
    """A :class:`~gcr.judges.base.Judge` that asks a chat model the questions of a :class:`Rubric`.

    Args:
        backend: the chat model (HTTP server or in-process).
        rubric: what to ask and how to combine the answers.
        sampling: temperature and token limit; defaults to the rubric's own.
        max_reasks: how often an unreadable answer is asked again (0 disables).
        where: where the model lives (URL or path), for the identity.
    """

    def __init__(
        self,
        backend: ChatBackend,
        rubric: Rubric,
        *,
        sampling: SamplingParams | None = None,
        max_reasks: int = 1,
        where: str = "",
    ) -> None:
        if max_reasks < 0:
            raise ConfigError(f"max_reasks must be 0 or more, got {max_reasks}")
        self.backend = backend
        self.rubric = rubric
        self.sampling = sampling or SamplingParams(
            temperature=rubric.temperature, max_tokens=rubric.max_tokens
        )
        self.max_reasks = max_reasks
        s = self.sampling
        pixels = getattr(backend, "max_pixels", None)
        self.identity = (
            f"vlm:{backend.model_id}@{where or 'local'};rubric={rubric.name}#{rubric.digest[:12]};"
            f"temperature={s.temperature:g};max_tokens={s.max_tokens};max_pixels={pixels}"
        )

    def __repr__(self) -> str:
        return f"RubricJudge({self.identity!r})"

    @property
    def tasks(self) -> tuple[Task, ...]:
        """The tasks the rubric has prompts for."""
        return self.rubric.tasks

    async def judge(
        self, prompt: str, image: Image.Image, sources: Sequence[Image.Image] = ()
    ) -> JudgeResult:
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError("the prompt to judge against is empty")
        task = Task.EDIT if len(sources) else Task.T2I
        self.rubric.check_task(task)
        answers = await asyncio.gather(
            *(self._ask(q, task, prompt.strip(), image, sources) for q in self.rubric.questions)
        )
        criteria = {q.key: scores for q, (scores, _) in zip(self.rubric.questions, answers, strict=True)}
        score, subscores = self.rubric.combine(criteria)
        raw = "\n\n".join(
            f"## {q.key}\n{text.strip()}" for q, (_, text) in zip(self.rubric.questions, answers, strict=True)
        )
        return JudgeResult(score=score, subscores=subscores, raw=raw, judge=self.identity)

    async def _ask(
        self, question: Question, task: Task, prompt: str, image: Image.Image, sources: Sequence[Image.Image]
    ) -> tuple[dict[str, float], str]:
        request = self.rubric.render(question, task, prompt, image, sources)
        current = request
        for attempt in range(self.max_reasks + 1):
            text = await self._complete(current)
            try:
                return self.rubric.read_answer(question, task, text), text
            except JudgeResponseError as exc:
                if is_truncated(text):
                    raise JudgeResponseError(
                        f"the judge's answer to {question.key!r} was cut off at max_tokens="
                        f"{self.sampling.max_tokens}; raise it with the max_tokens option",
                        text,
                    ) from None
                if attempt < self.max_reasks:
                    logger.warning("judge answer to %r unreadable (%s); asking again", question.key, exc)
                    current = _with_reminder(request, self.rubric, question, task)
                    continue
                raise JudgeResponseError(
                    f"the judge's answer to {question.key!r} has no readable scores "
                    f"({str(exc).split(' (answer began')[0]})",
                    text,
                ) from None
        raise AssertionError("unreachable: the loop returns or raises")

    async def _complete(self, request: ChatRequest) -> str:
        try:
            return await self.backend.complete(request, self.sampling)
        except CriticUnavailableError as exc:
            raise JudgeUnavailableError(f"judge {self.backend.model_id}: {_judge_words(exc)}") from None
        except CriticError as exc:
            raise JudgeError(f"judge {self.backend.model_id}: {_judge_words(exc)}") from None

    async def aclose(self) -> None:
        await self.backend.aclose()


def _judge_words(exc: Exception) -> str:
    """The backend's message, which speaks of 'the critic', retold for a judge."""
    return str(exc).replace("critic server", "judge server").replace("`gcr serve critic`", "a judge server")


def _option_words(exc: Exception) -> str:
    """A loader's message, which names CLI flags, retold with the judge spec's options."""
    return str(exc).replace("--model NAME", "the model=NAME option").replace("--model", "model=")


def _with_reminder(request: ChatRequest, rubric: Rubric, question: Question, task: Task) -> ChatRequest:
    reminder = (
        "\n\nYour previous answer could not be read. "
        + answer_format(question.criteria[task], rubric.low, rubric.high)
    )
    parts = list(request.parts)
    if parts and isinstance(parts[-1], str):
        parts[-1] = parts[-1] + reminder
    else:
        parts.append(reminder.lstrip())
    return ChatRequest(system=request.system, parts=tuple(parts))


# ---------------------------------------------------------------------- factories


def rubric_judge(target: str, **options: Any) -> RubricJudge:
    """``vlm:TARGET,rubric=...``: a rubric judge on the model at ``TARGET`` (URL, folder or Hub id).

    Options: ``rubric`` (viescore, imgedit or a file; default viescore), ``model``
    (served model name), ``temperature``, ``max_tokens``, ``timeout``, ``max_retries``,
    ``concurrency``, ``max_pixels``, ``api_key_env``, ``max_reasks``, and for
    in-process models ``device`` and ``dtype``.
    """
    from gcr.critic.loading import is_server_url, load_backend

    spec = f"vlm:{target}"
    if not target:
        raise ConfigError(
            f"judge {spec}: give the judge model, e.g. vlm:https://api.openai.com/v1,model=gpt-4.1 "
            "or vlm:http://127.0.0.1:8000/v1 (a vLLM server)"
        )
    opts = Options(spec, options)
    rubric = load_rubric(opts.str("rubric", "viescore") or "viescore")
    temperature = opts.float("temperature", rubric.temperature)
    max_tokens = opts.int("max_tokens", rubric.max_tokens)
    max_reasks = opts.int("max_reasks", 1)
    remote = is_server_url(target)
    kwargs: dict[str, Any] = {
        "model": opts.str("model"),
        "api_key_env": opts.str("api_key_env", API_KEY_ENV),
        "timeout": opts.float("timeout", DEFAULT_TIMEOUT_S),
        "max_retries": opts.int("max_retries", DEFAULT_MAX_RETRIES),
        "max_concurrency": opts.int("concurrency", DEFAULT_JUDGE_CONCURRENCY),
        "max_pixels": opts.int("max_pixels", DEFAULT_MAX_PIXELS),
    }
    if not remote:
        kwargs.update(device=opts.str("device"), dtype=opts.str("dtype"))
    opts.done()
    assert temperature is not None and max_tokens is not None and max_reasks is not None
    try:
        backend = load_backend(target, **kwargs)
    except CriticUnavailableError as exc:
        raise JudgeUnavailableError(f"judge {spec}: {_judge_words(exc)}") from None
    except ConfigError as exc:  # e.g. a server with several models: the judge spec's option names it
        raise ConfigError(f"judge {spec}: {_option_words(exc)}") from None
    sampling = SamplingParams(temperature=temperature, max_tokens=max_tokens)
    return RubricJudge(backend, rubric, sampling=sampling, max_reasks=max_reasks, where=target)


def viescore_judge(target: str, **options: Any) -> RubricJudge:
    """``viescore:TARGET,...``: a rubric judge with GEdit-Bench's VIEScore rubric."""
    return _fixed_rubric("viescore", target, options)


def imgedit_judge(target: str, **options: Any) -> RubricJudge:
    """``imgedit:TARGET,...``: a rubric judge with ImgEdit-Bench's 1-5 rubric (edits only)."""
    return _fixed_rubric("imgedit", target, options)


def _fixed_rubric(name: str, target: str, options: dict[str, Any]) -> RubricJudge:
    if "rubric" in options:
        raise ConfigError(f"judge {name}:{target}: the {name} kind fixes the rubric; use vlm:... for another")
    return rubric_judge(target, rubric=name, **options)
