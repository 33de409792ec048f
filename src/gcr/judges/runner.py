"""Calling judges the way the loop calls its critic: bounded, cached by content, failures recorded.

:class:`JudgePanel` holds the judges of one run. Every call

* waits for one of ``concurrency`` slots shared by all its judges (the judges'
  own HTTP clients retry transient failures with backoff and enforce timeouts);
* looks in a content-keyed cache first: the key is a SHA-256 of the judge's
  identity, the prompt judged, the image's pixel digest and the source digests,
  so a rerun or a resumed benchmark never asks again for a verdict it has;
* returns a :class:`JudgeVerdict` that holds either the result or the error. A
  judge that fails (unreachable, unreadable answer, wrong task) is recorded as
  failed, never as a score; failures are not cached, so the next run asks again.

Exceptions that are not :class:`~gcr.errors.GCRError` are bugs and propagate.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from gcr.errors import ConfigError, GCRError
from gcr.images import image_digest
from gcr.io import write_text_atomic
from gcr.judges.base import Judge, JudgeResult

logger = logging.getLogger(__name__)

_NAMESPACE = "gcr-judgements-v1"
DEFAULT_JUDGE_CONCURRENCY = 4


def judgement_key(*, judge: str, prompt: str, image_digest: str, source_digests: Sequence[str] = ()) -> str:
    """Cache key of one judge's verdict on one image for one prompt."""
    payload = {"ns": _NAMESPACE, "judge": judge, "prompt": prompt, "image": image_digest,
               "sources": list(source_digests)}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class JudgementCache:
    """Verdicts as small JSON files under ``root/judgements``, written atomically."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser() / "judgements"

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> JudgeResult | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return JudgeResult.from_dict(json.loads(path.read_text("utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("discarding unreadable cached judgement %s: %s", path, exc)
            path.unlink(missing_ok=True)
            return None

    def put(self, key: str, result: JudgeResult) -> None:
        write_text_atomic(self._path(key), json.dumps(result.to_dict(), ensure_ascii=False))


@dataclass(frozen=True)
class JudgeVerdict:
    """What one judge said about one image: a result, or the error that stopped it."""

    judge: str
    result: JudgeResult | None = None
    error: dict[str, str] | None = None
    cached: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def score(self) -> float | None:
        return None if self.result is None else self.result.score

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"judge": self.judge, "status": "ok" if self.ok else "failed"}
        if self.result is not None:
            out.update(score=self.result.score, subscores=dict(self.result.subscores))
        else:
            out["error"] = dict(self.error or {})
        out.update(cached=self.cached, seconds=round(self.seconds, 4))
        return out


class JudgePanel:
    """The judges of a run, called through one bounded, cached path (see the module docstring)."""

    def __init__(
        self,
        judges: Sequence[Judge],
        *,
        cache_dir: str | Path | None = None,
        concurrency: int = DEFAULT_JUDGE_CONCURRENCY,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"judge concurrency must be at least 1 (got {concurrency})")
        identities = [j.identity for j in judges]
        if len(set(identities)) != len(identities):
            raise ConfigError("the same judge is given twice; give each judge once")
        self.judges = list(judges)
        self.cache = JudgementCache(cache_dir) if cache_dir is not None else None
        self.concurrency = concurrency
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def identities(self) -> list[str]:
        return [j.identity for j in self.judges]

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._slots, self._loop = asyncio.Semaphore(self.concurrency), loop
        return self._slots

    async def verdict(
        self,
        judge: Judge,
        prompt: str,
        image: Image.Image,
        sources: Sequence[Image.Image] = (),
        *,
        digests: tuple[str, Sequence[str]] | None = None,
    ) -> JudgeVerdict:
        """``judge``'s verdict on ``image`` (from the cache when it has one)."""
        if digests is None:
            digests = (image_digest(image), [image_digest(s) for s in sources])
        key = judgement_key(
            judge=judge.identity, prompt=prompt, image_digest=digests[0], source_digests=digests[1]
        )
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return JudgeVerdict(judge=judge.identity, result=hit, cached=True)
        async with self._semaphore():
            started = time.perf_counter()
            try:
                result = await judge.judge(prompt, image, sources)
            except GCRError as exc:
                seconds = time.perf_counter() - started
                logger.warning("judge %s failed: %s", judge.identity, exc)
                error = {"type": type(exc).__name__, "message": str(exc)}
                return JudgeVerdict(judge=judge.identity, error=error, seconds=seconds)
            seconds = time.perf_counter() - started
        if not isinstance(result, JudgeResult):
            raise TypeError(f"judge {judge.identity} returned a {type(result).__name__}, not a JudgeResult")
        if self.cache is not None:
            self.cache.put(key, result)
        return JudgeVerdict(judge=judge.identity, result=result, seconds=seconds)

    async def verdicts(
        self, prompt: str, image: Image.Image, sources: Sequence[Image.Image] = ()
    ) -> dict[str, JudgeVerdict]:
        """Every judge's verdict on ``image``, by judge identity (asked concurrently)."""
        digests = (image_digest(image), [image_digest(s) for s in sources])
        found = await asyncio.gather(
            *(self.verdict(j, prompt, image, sources, digests=digests) for j in self.judges)
        )
        return {v.judge: v for v in found}

    async def aclose(self) -> None:
        for judge in self.judges:
            close = getattr(judge, "aclose", None)
            if close is not None:
                await close()


def verdicts_to_dict(verdicts: Mapping[str, JudgeVerdict]) -> dict[str, dict[str, Any]]:
    return {k: v.to_dict() for k, v in verdicts.items()}
