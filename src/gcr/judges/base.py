"""The judge interface: what every independent scorer of an image returns, and how judges are named.

A judge scores one image against the user's *original* prompt (plus the source
images of an edit) and returns a :class:`JudgeResult`: a score normalized to
[0, 1], its own named sub-scores on its own scale, the raw answer, and the
judge's identity. A judge that cannot score raises a
:class:`~gcr.errors.JudgeError`; it never returns a made-up score.

Judges are named by a *spec* string, ``KIND:TARGET[,key=value...]``, e.g.
``viescore:https://api.openai.com/v1,model=gpt-4.1`` (see ``docs/judges.md``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from gcr.errors import ConfigError

_KIND_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")
_OPTION_RE = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class JudgeResult:
    """One judge's verdict on one image."""

    #: The judge's verdict normalized to [0, 1] (higher is better).
    score: float
    #: Named sub-scores on the judge's own scale (e.g. VIEScore's 0–10 ``semantic_consistency``).
    subscores: dict[str, float] = field(default_factory=dict)
    #: The judge's raw answer (model text, or a short description for numeric scorers).
    raw: str = ""
    #: The identity of the judge that gave it (:attr:`Judge.identity`).
    judge: str = ""

    def __post_init__(self) -> None:
        score = float(self.score)
        if not math.isfinite(score) or not 0.0 <= score <= 1.0:
            raise ValueError(f"a judge score must lie in [0, 1], got {self.score!r}")
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "subscores", {str(k): float(v) for k, v in self.subscores.items()})

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "subscores": dict(self.subscores), "raw": self.raw, "judge": self.judge}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgeResult:
        return cls(
            score=float(data["score"]),
            subscores=dict(data.get("subscores") or {}),
            raw=str(data.get("raw") or ""),
            judge=str(data.get("judge") or ""),
        )


@runtime_checkable
class Judge(Protocol):
    """Anything that scores an image for a prompt.

    ``identity`` must change whenever anything that changes the verdict changes
    (kind, model, rubric, sampling temperature, ...): caches key on it.
    Judges that hold connections or models may also define ``async def aclose()``.
    """

    identity: str

    async def judge(
        self, prompt: str, image: Image.Image, sources: Sequence[Image.Image] = ()
    ) -> JudgeResult:
        """Score ``image`` made for ``prompt`` (an edit of ``sources`` when given)."""
        ...


def check_judge_task(judge: object, task: object, what: str = "judge") -> None:
    """Refuse, before any work, a judge that declares (``tasks``) it cannot judge ``task``."""
    from gcr.task import Task

    tasks = getattr(judge, "tasks", None)
    wanted = Task.parse(task)  # type: ignore[arg-type]
    if tasks is not None and wanted not in tasks:
        raise ConfigError(
            f"{what} {getattr(judge, 'identity', judge)} cannot judge {wanted.value} images (it judges "
            f"{', '.join(Task.parse(t).value for t in tasks) or 'nothing'}); choose another judge"
        )


@dataclass(frozen=True)
class JudgeSpec:
    """A parsed judge spec: ``KIND:TARGET[,key=value...]``."""

    kind: str
    target: str
    options: dict[str, str] = field(default_factory=dict)
    text: str = ""

    def __str__(self) -> str:
        return self.text or format_spec(self.kind, self.target, self.options)


def format_spec(kind: str, target: str, options: Mapping[str, str]) -> str:
    tail = "".join(f",{k}={v}" for k, v in options.items())
    return f"{kind}:{target}{tail}"


def parse_judge_spec(spec: str) -> JudgeSpec:
    """Split ``KIND:TARGET[,key=value...]``.

    ``TARGET`` is a URL, a folder, a model id or empty (the kind's default);
    options follow it, comma-separated. The kind is everything before the first
    colon, so URLs (which hold colons) need no quoting beyond the shell's.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("empty judge spec: use KIND:TARGET, e.g. viescore:http://127.0.0.1:8000/v1")
    text = spec.strip()
    kind, colon, rest = text.partition(":")
    kind = kind.strip().lower()
    if not colon or not _KIND_RE.match(kind) or rest.startswith("//"):
        raise ConfigError(
            f"judge spec {spec!r} does not start with a judge kind and a colon: use KIND:TARGET, "
            "e.g. viescore:http://127.0.0.1:8000/v1 or clip:openai/clip-vit-large-patch14"
        )
    pieces = rest.split(",")
    target = pieces[0].strip()
    options: dict[str, str] = {}
    for piece in pieces[1:]:
        key, eq, value = piece.partition("=")
        key = key.strip().lower()
        if not eq or not _OPTION_RE.match(key):
            raise ConfigError(
                f"judge spec {spec!r}: option {piece.strip()!r} is not key=value "
                "(options follow the target, separated by commas)"
            )
        if key in options:
            raise ConfigError(f"judge spec {spec!r}: option {key!r} is given twice")
        options[key] = value.strip()
    return JudgeSpec(kind=kind, target=target, options=options, text=text)


class Options:
    """Typed access to a spec's ``key=value`` options; unknown keys are refused at the end."""

    def __init__(self, spec: str, options: Mapping[str, Any]) -> None:
        self.spec = spec
        self._left = dict(options)

    def str(self, key: str, default: str | None = None) -> str | None:
        value = self._left.pop(key, None)
        return default if value is None or value == "" else str(value)

    def float(self, key: str, default: float | None = None) -> float | None:
        value = self._left.pop(key, None)
        if value is None or value == "":
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"judge {self.spec}: option {key}={value!r} is not a number") from None
        if not math.isfinite(number):
            raise ConfigError(f"judge {self.spec}: option {key}={value!r} is not a finite number")
        return number

    def int(self, key: str, default: int | None = None) -> int | None:
        value = self._left.pop(key, None)
        if value is None or value == "":
            return default
        try:
            return int(str(value))
        except ValueError:
            raise ConfigError(f"judge {self.spec}: option {key}={value!r} is not a whole number") from None

    def done(self) -> None:
        if self._left:
            raise ConfigError(
                f"judge {self.spec}: unknown option(s) {', '.join(sorted(self._left))}; "
                "see docs/judges.md for each kind's options"
            )
