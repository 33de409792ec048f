"""The prompt set ``gcr bench`` runs: its cases (prompts, or edit instructions with source images).

The files a prompt set is read from are handled by :mod:`gcr.bench.prompt_files`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from gcr.bench.eval.pairs import ImageRef
from gcr.task import Task


@dataclass(frozen=True, eq=False)
class BenchCase:
    """One prompt (or edit instruction with its source images) of a prompt set."""

    id: str
    prompt: str
    sources: tuple[ImageRef, ...] = ()
    category: str | None = None
    row: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> Task:
        return Task.EDIT if self.sources else Task.T2I

    def fingerprint(self) -> str:
        """What identifies the case's content: id, prompt and how its images are referenced."""
        images = [_image_fingerprint(ref.value) for ref in self.sources]
        return json.dumps([self.id, self.prompt, images], ensure_ascii=False)


@dataclass(frozen=True)
class PromptSet:
    """A loaded prompt set: its cases in file order and where they came from."""

    name: str
    source: str
    cases: tuple[BenchCase, ...]
    task: Task

    def __len__(self) -> int:
        return len(self.cases)

    def head(self, limit: int | None) -> tuple[BenchCase, ...]:
        """The first ``limit`` cases (all of them when ``limit`` is None)."""
        return self.cases if limit is None else self.cases[:limit]

    def digest(self) -> str:
        """A content hash of the whole set, so a results folder is never reused for another set."""
        h = hashlib.sha256()
        for case in self.cases:
            h.update(case.fingerprint().encode("utf-8"))
            h.update(b"\n")
        return h.hexdigest()

    @property
    def categories(self) -> list[str]:
        return sorted({c.category for c in self.cases if c.category})


def _image_fingerprint(value: Any) -> str:
    if isinstance(value, str):
        return value
    data = value.get("bytes") if isinstance(value, dict) else value
    return "sha256:" + hashlib.sha256(bytes(data)).hexdigest()
