"""What gcr works on: a text-to-image generation or an edit of source images.

One small module of its own, because every layer needs it (generators, critic,
agent, benchmarks, training) and none of them should import another for it.
"""

from __future__ import annotations

from enum import StrEnum

from gcr.errors import InputError


class Task(StrEnum):
    """What the critic judges: a text-to-image output or an edit of a source image."""

    T2I = "t2i"
    EDIT = "edit"

    @classmethod
    def parse(cls, value: str | Task) -> Task:
        """Return the task named by ``value``; raise :class:`InputError` for anything else."""
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            known = ", ".join(t.value for t in cls)
            raise InputError(f"unknown task {value!r}: use one of {known}") from None
