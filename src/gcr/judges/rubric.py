"""Rubric files: how a vision-language model judges an image, and how its answers become one score.

A rubric is a markdown file with a YAML header and one prompt per question and task::

    ---
    name: my-rubric
    scale: [0, 10]            # every criterion is scored on this range
    overall: geometric_mean   # how question scores combine: geometric_mean | mean | min
    keep_criteria: false      # also report each criterion as a sub-score
    temperature: 0.0          # sampling defaults (a spec option overrides them)
    max_tokens: 1024
    questions:
      - key: semantic_consistency
        reduce: min           # how a question's criteria combine: min | mean
        criteria:
          t2i: [prompt_following]
          edit: [instruction_following, minimal_change]
      - key: perceptual_quality
        reduce: min
        criteria: [naturalness, artifacts]   # the same list for every task
    ---
    <!-- question: semantic_consistency, task: t2i -->
    <!-- system -->
    You judge ...
    <!-- user -->
    Prompt: {request}
    <image:candidate>
    <!-- question: perceptual_quality, task: any -->
    ...

Each question is one chat request. Its user part holds ``{request}`` (the user's
prompt) where the question needs it, ``<image:candidate>`` exactly once and, for
edit prompts, optionally ``<image:source>`` (every source image, in order). gcr
appends the answer format itself (one JSON object whose ``scores`` holds exactly
the question's criteria on the rubric's scale), so the parser and the prompt
always agree. The header is read with ``yaml.safe_load``: nothing in a rubric
file is ever executed. A question key ``overall`` names the overall score itself
(only for a one-question rubric).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from PIL import Image

from gcr.critic.backends.base import ChatRequest
from gcr.errors import ConfigError, InputError, JudgeResponseError
from gcr.task import Task

Reduce = Literal["min", "mean"]
Combine = Literal["geometric_mean", "mean", "min"]
BUILTIN_RUBRICS = ("viescore", "imgedit")
#: Largest rubric file read (a rubric is a few kilobytes of text).
MAX_RUBRIC_BYTES = 256 * 1024

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_HEADER_RE = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)
_QUESTION_RE = re.compile(
    r"^[ \t]*<!--\s*question:\s*([A-Za-z0-9_]+)\s*,\s*task:\s*([A-Za-z0-9_-]+)\s*-->[ \t]*$",
    re.MULTILINE,
)
_MARKER_RE = re.compile(r"^[ \t]*<!--\s*(system|user)\s*-->[ \t]*$", re.MULTILINE | re.IGNORECASE)
_SLOT_RE = re.compile(r"<image:([^<>\s]*)>")
_SLOTS = ("source", "candidate")


@dataclass(frozen=True)
class Question:
    key: str
    reduce: Reduce
    #: Criteria names per task.
    criteria: Mapping[Task, tuple[str, ...]]


@dataclass(frozen=True)
class Prompt:
    """The chat prompt of one question for one task."""

    system: str
    user: str


@dataclass(frozen=True)
class Rubric:
    name: str
    low: float
    high: float
    overall: Combine
    keep_criteria: bool
    temperature: float
    max_tokens: int
    questions: tuple[Question, ...]
    prompts: Mapping[tuple[str, Task], Prompt]
    #: Where it was read from, and the sha256 of its bytes (part of the judge's identity).
    path: str
    digest: str

    @property
    def tasks(self) -> tuple[Task, ...]:
        return tuple(t for t in Task if all((q.key, t) in self.prompts for q in self.questions))

    def check_task(self, task: Task) -> None:
        if task not in self.tasks:
            raise InputError(
                f"rubric {self.name!r} has no prompts for {task.value} images "
                f"(it judges {', '.join(t.value for t in self.tasks) or 'nothing'})"
            )

    # ------------------------------------------------------------------ requests

    def render(
        self, question: Question, task: Task, request: str, image: Image.Image, sources: Sequence[Image.Image]
    ) -> ChatRequest:
        """The chat request asking ``question`` about ``image``."""
        prompt = self.prompts[(question.key, task)]
        criteria = question.criteria[task]
        fmt = answer_format(criteria, self.low, self.high)
        images = {"source": list(sources), "candidate": [image]}
        parts: list[str | Image.Image] = []
        pos = 0
        for m in _SLOT_RE.finditer(prompt.user):
            _add_text(parts, prompt.user[pos : m.start()].replace("{request}", request))
            for img in images[m.group(1)]:
                if parts and isinstance(parts[-1], Image.Image):
                    parts.append("\n")
                parts.append(img)
            pos = m.end()
        _add_text(parts, prompt.user[pos:].replace("{request}", request) + "\n\n" + fmt)
        return ChatRequest(system=prompt.system.replace("{request}", request), parts=tuple(parts))

    # ------------------------------------------------------------------ answers

    def read_answer(self, question: Question, task: Task, text: str) -> dict[str, float]:
        """The criteria scores in ``text``; a :class:`JudgeResponseError` when they are not all there."""
        return parse_scores(text, question.criteria[task], self.low, self.high)

    def combine(self, answers: Mapping[str, Mapping[str, float]]) -> tuple[float, dict[str, float]]:
        """(score in [0, 1], sub-scores) from each question's criteria scores."""
        subscores: dict[str, float] = {}
        values: list[float] = []
        for q in self.questions:
            crit = answers[q.key]
            value = min(crit.values()) if q.reduce == "min" else sum(crit.values()) / len(crit)
            values.append(value)
            if self.keep_criteria:
                subscores.update(crit)
            if q.key != "overall":
                subscores[q.key] = value
        overall = _combine(self.overall, values, self.low)
        subscores["overall"] = overall
        score = (overall - self.low) / (self.high - self.low)
        return min(1.0, max(0.0, score)), subscores


def _combine(how: Combine, values: Sequence[float], low: float) -> float:
    if how == "min":
        return min(values)
    if how == "mean":
        return sum(values) / len(values)
    # Geometric mean, taken on the scale's own origin: VIEScore's overall is sqrt(SC * PQ) on 0-10.
    shifted = [max(0.0, v - low) for v in values]
    return low + math.prod(shifted) ** (1.0 / len(shifted))


def _add_text(parts: list[str | Image.Image], text: str) -> None:
    if not text:
        return
    if parts and isinstance(parts[-1], str):
        parts[-1] += text
    else:
        parts.append(text)


def answer_format(criteria: Sequence[str], low: float, high: float) -> str:
    """The answer-format paragraph gcr appends to every rubric question."""
    example = ", ".join(f'"{c}": <number from {low:g} to {high:g}>' for c in criteria)
    return (
        "Reply with one JSON object and nothing after it, in exactly this form:\n"
        f'{{"reasoning": "<one or two short sentences>", "scores": {{{example}}}}}'
    )


_FENCE_RE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


def parse_scores(text: str, criteria: Sequence[str], low: float, high: float) -> dict[str, float]:
    """Read ``{"scores": {criterion: number}}`` from a judge's answer.

    The last JSON object in the text that has a ``scores`` member is used (a
    fenced ```json block first). Every criterion must be present, a finite
    number within [low, high]; anything else is a :class:`JudgeResponseError`
    carrying the raw text, never a default.
    """
    obj = _last_scores_object(text)
    if obj is None:
        raise JudgeResponseError("the judge's answer holds no JSON object with a 'scores' member", text)
    scores = obj["scores"]
    if isinstance(scores, list) and len(scores) == len(criteria):
        scores = dict(zip(criteria, scores, strict=True))
    if not isinstance(scores, dict):
        raise JudgeResponseError("the judge's 'scores' is not an object of named numbers", text)
    lowered = {str(k).strip().lower(): v for k, v in scores.items()}
    out: dict[str, float] = {}
    for name in criteria:
        if name not in lowered:
            raise JudgeResponseError(f"the judge's answer has no score for {name!r}", text)
        value = lowered[name]
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise JudgeResponseError(f"the judge's score for {name!r} is not a number: {value!r}", text)
        try:
            number = float(value)
        except ValueError:
            raise JudgeResponseError(
                f"the judge's score for {name!r} is not a number: {value!r}", text
            ) from None
        if not math.isfinite(number) or not low <= number <= high:
            raise JudgeResponseError(
                f"the judge's score for {name!r} is {value!r}, outside the rubric's {low:g}-{high:g} scale",
                text,
            )
        out[name] = number
    return out


def _last_scores_object(text: str) -> dict[str, Any] | None:
    candidates = [m.group(1) for m in _FENCE_RE.finditer(text)]
    decoder = json.JSONDecoder()
    starts = [i for i, ch in enumerate(text) if ch == "{"]
    found: dict[str, Any] | None = None
    for blob in candidates:
        try:
            obj = json.loads(blob)
        except ValueError:
            continue
        if isinstance(obj, dict) and "scores" in obj:
            found = obj
    if found is not None:
        return found
    for start in starts:
        try:
            obj, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(obj, dict) and "scores" in obj:
            found = obj
    return found


# ---------------------------------------------------------------------- loading


def load_rubric(name_or_path: str | Path) -> Rubric:
    """A built-in rubric by name (``viescore``, ``imgedit``) or the user's rubric file at a path."""
    text = str(name_or_path).strip()
    if text.lower() in BUILTIN_RUBRICS:
        return _load_builtin(text.lower())
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"rubric {text!r} is neither a built-in ({', '.join(BUILTIN_RUBRICS)}) nor an existing file"
        )
    if path.stat().st_size > MAX_RUBRIC_BYTES:
        raise ConfigError(
            f"rubric file {path} is larger than {MAX_RUBRIC_BYTES // 1024} KiB; is it a rubric?"
        )
    try:
        raw = path.read_bytes()
        return _build(raw.decode("utf-8"), str(path), raw, path.stem)
    except UnicodeDecodeError:
        raise ConfigError(f"rubric file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read rubric file {path}: {exc}") from None


@lru_cache(maxsize=4)
def _load_builtin(name: str) -> Rubric:
    raw = resources.files("gcr.judges").joinpath("rubrics", f"{name}.md").read_bytes()
    return _build(raw.decode("utf-8"), f"gcr.judges/rubrics/{name}.md", raw, name)


def _build(text: str, where: str, raw: bytes, stem: str) -> Rubric:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    m = _HEADER_RE.match(text)
    if m is None:
        raise ConfigError(f"rubric {where}: must start with a YAML header between two '---' lines")
    try:
        header = yaml.safe_load(m.group(1))
    except yaml.YAMLError as exc:
        raise ConfigError(f"rubric {where}: the YAML header is not valid YAML ({exc})") from None
    if not isinstance(header, dict):
        raise ConfigError(f"rubric {where}: the YAML header must be a mapping of settings")
    fail = _Failer(where)
    name = str(header.get("name") or stem)
    low, high = _scale(header.get("scale"), fail)
    overall = header.get("overall", "mean")
    if overall not in ("geometric_mean", "mean", "min"):
        fail(f"overall must be geometric_mean, mean or min, not {overall!r}")
    temperature = _number(header.get("temperature", 0.0), "temperature", fail)
    max_tokens = header.get("max_tokens", 1024)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 16:
        fail(f"max_tokens must be a whole number of at least 16, not {max_tokens!r}")
    questions = _questions(header.get("questions"), fail)
    prompts = _prompts(text[m.end() :], questions, fail)
    return Rubric(
        name=name,
        low=low,
        high=high,
        overall=overall,
        keep_criteria=bool(header.get("keep_criteria", False)),
        temperature=temperature,
        max_tokens=max_tokens,
        questions=questions,
        prompts=prompts,
        path=where,
        digest=hashlib.sha256(raw).hexdigest(),
    )


class _Failer:
    def __init__(self, where: str) -> None:
        self.where = where

    def __call__(self, message: str) -> None:
        raise ConfigError(f"rubric {self.where}: {message}")


def _number(value: Any, what: str, fail: _Failer) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        fail(f"{what} must be a number, not {value!r}")
    return float(value)


def _scale(value: Any, fail: _Failer) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        fail("scale must be a list of two numbers, e.g. [0, 10]")
    low, high = _number(value[0], "scale", fail), _number(value[1], "scale", fail)
    if not low < high:
        fail(f"scale {value!r} must go from a lower to a higher number")
    return low, high


def _questions(value: Any, fail: _Failer) -> tuple[Question, ...]:
    if not isinstance(value, list) or not value:
        fail("questions must be a non-empty list")
    out: list[Question] = []
    for item in value:
        if not isinstance(item, dict):
            fail(f"each question must be a mapping with key, reduce and criteria, not {item!r}")
        key = str(item.get("key", ""))
        if not _NAME_RE.match(key) or key in {q.key for q in out}:
            fail(f"question key {key!r} must be a unique lower_case name")
        reduce = item.get("reduce", "mean")
        if reduce not in ("min", "mean"):
            fail(f"question {key}: reduce must be min or mean, not {reduce!r}")
        raw = item.get("criteria")
        per_task = raw if isinstance(raw, dict) else {t.value: raw for t in Task}
        criteria: dict[Task, tuple[str, ...]] = {}
        for task_name, names in per_task.items():
            try:
                task = Task.parse(str(task_name))
            except Exception:
                fail(f"question {key}: unknown task {task_name!r} (use t2i or edit)")
            if not isinstance(names, list) or not names or not all(
                isinstance(n, str) and _NAME_RE.match(n) for n in names
            ):
                fail(f"question {key}: criteria must be a list of lower_case names, not {names!r}")
            if len(set(names)) != len(names):
                fail(f"question {key}: a criterion is named twice in {names!r}")
            criteria[task] = tuple(names)
        out.append(Question(key=key, reduce=reduce, criteria=criteria))
    if any(q.key == "overall" for q in out) and len(out) > 1:
        fail("a question may be called 'overall' only when it is the rubric's only question")
    return tuple(out)


def _prompts(body: str, questions: Sequence[Question], fail: _Failer) -> dict[tuple[str, Task], Prompt]:
    blocks = list(_QUESTION_RE.finditer(body))
    if not blocks:
        fail("no '<!-- question: KEY, task: t2i|edit|any -->' block")
    if body[: blocks[0].start()].strip():
        fail("text before the first question block")
    by_key = {q.key: q for q in questions}
    out: dict[tuple[str, Task], Prompt] = {}
    for i, m in enumerate(blocks):
        key, task_name = m.group(1), m.group(2).lower()
        if key not in by_key:
            fail(f"prompt block for unknown question {key!r}")
        tasks = list(Task) if task_name == "any" else [_task(task_name, fail)]
        end = blocks[i + 1].start() if i + 1 < len(blocks) else len(body)
        system, user = _split(body[m.end() : end], f"question {key} ({task_name})", fail)
        for task in tasks:
            if task not in by_key[key].criteria:
                fail(f"question {key} has a {task.value} prompt but no {task.value} criteria")
            if (key, task) in out:
                fail(f"question {key} has two {task.value} prompts")
            _check_slots(user, task, f"question {key} ({task.value})", fail)
            out[(key, task)] = Prompt(system=system, user=user)
    return out


def _task(name: str, fail: _Failer) -> Task:
    try:
        return Task.parse(name)
    except Exception:
        fail(f"unknown task {name!r} in a question block (use t2i, edit or any)")
        raise AssertionError("unreachable") from None


def _split(text: str, what: str, fail: _Failer) -> tuple[str, str]:
    markers = list(_MARKER_RE.finditer(text))
    kinds = [mk.group(1).lower() for mk in markers]
    if kinds not in (["user"], ["system", "user"]):
        fail(f"{what}: needs an optional '<!-- system -->' part followed by one '<!-- user -->' part")
    if text[: markers[0].start()].strip():
        fail(f"{what}: text before its '<!-- system -->' or '<!-- user -->' line")
    if len(markers) == 1:
        return "", text[markers[0].end() :].strip()
    return text[markers[0].end() : markers[1].start()].strip(), text[markers[1].end() :].strip()


def _check_slots(user: str, task: Task, what: str, fail: _Failer) -> None:
    found = [m.group(1) for m in _SLOT_RE.finditer(user)]
    unknown = sorted({s for s in found if s not in _SLOTS})
    if unknown:
        fail(f"{what}: unknown image slot(s) {', '.join(f'<image:{s}>' for s in unknown)}")
    if found.count("candidate") != 1:
        fail(f"{what}: needs the <image:candidate> slot exactly once")
    if found.count("source") > 1:
        fail(f"{what}: <image:source> may appear once (it stands for every source image)")
    if task is Task.T2I and "source" in found:
        fail(f"{what}: a text-to-image prompt has no source images; remove <image:source>")
