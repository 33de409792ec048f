"""Typed critique objects: the contract every part of gcr consumes.

Dimension keys, headers and their order follow the answer layout that the
released RationalRewards checkpoints were trained on (see docs in README).
Scores are floats on the 1-4 scale; ``None`` stands for N/A.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gcr.errors import InputError
from gcr.task import Task


class Dimension(StrEnum):
    """A judged aspect of an image. The value is the key used in gcr's API and files."""

    TEXT_FAITHFULNESS = "text_faithfulness"
    IMAGE_FAITHFULNESS = "image_faithfulness"
    PHYSICAL_QUALITY = "physical_quality"
    TEXT_RENDERING = "text_rendering"

    @property
    def header(self) -> str:
        """The section title the critic model writes for this dimension."""
        return _HEADERS[self]

    @property
    def allows_na(self) -> bool:
        """Whether the model may answer N/A (only when no text was requested)."""
        return self is Dimension.TEXT_RENDERING

    @classmethod
    def parse(cls, value: str | Dimension) -> Dimension:
        """Accept a key (``physical_quality``) or a header (``Physical and Visual Quality``)."""
        text = str(value).strip()
        for dim in cls:
            if text.lower() in (dim.value, dim.header.lower()):
                return dim
        known = ", ".join(d.value for d in cls)
        raise InputError(f"unknown dimension {value!r}: use one of {known}")


_HEADERS = {
    Dimension.TEXT_FAITHFULNESS: "Text Faithfulness",
    Dimension.IMAGE_FAITHFULNESS: "Image Faithfulness",
    Dimension.PHYSICAL_QUALITY: "Physical and Visual Quality",
    Dimension.TEXT_RENDERING: "Text Rendering",
}

#: Dimensions in the order the model answers them, per task.
TASK_DIMENSIONS: dict[Task, tuple[Dimension, ...]] = {
    Task.T2I: (Dimension.TEXT_FAITHFULNESS, Dimension.PHYSICAL_QUALITY, Dimension.TEXT_RENDERING),
    Task.EDIT: (
        Dimension.TEXT_FAITHFULNESS,
        Dimension.IMAGE_FAITHFULNESS,
        Dimension.PHYSICAL_QUALITY,
        Dimension.TEXT_RENDERING,
    ),
}

SCORE_MIN = 1.0
SCORE_MAX = 4.0
#: Score given to an N/A dimension when summing pairwise scores (upstream convention).
NA_PAIRWISE_SCORE = 2.5

Winner = Literal["A", "B", "tie"]


#: Absorbs float rounding in score sums (3.3 + 2.7 against 6.0) when testing for a tie.
TIE_FLOAT_SLACK = 1e-9


def preference_from_totals(total_a: float, total_b: float, tie_tolerance: float = 0.0) -> Winner:
    """``"A"``, ``"B"`` or ``"tie"`` from two score sums; a tie only within ``tie_tolerance``.

    This is the one place the pairwise decision rule lives; evaluation, PARROT filtering
    and the CLI all call it so they can never disagree.
    """
    if tie_tolerance < 0:
        raise InputError(f"the tie tolerance must be 0 or more, not {tie_tolerance}")
    if abs(total_a - total_b) <= tie_tolerance + TIE_FLOAT_SLACK:
        return "tie"
    return "A" if total_a > total_b else "B"


class DimensionJudgement(BaseModel):
    """One dimension of a single-image critique."""

    model_config = ConfigDict(frozen=True)

    dimension: Dimension
    score: float | None = Field(description="1-4, or None for N/A")
    justification: str = ""

    @property
    def is_na(self) -> bool:
        return self.score is None


class Critique(BaseModel):
    """A pointwise critique of one image, as written by the critic and parsed by gcr."""

    model_config = ConfigDict(frozen=True)

    task: Task
    judgements: list[DimensionJudgement]
    request_analysis: str | None = None
    summary: str | None = None
    refinement_comments: str | None = None
    refined_request: str | None = None
    raw_text: str = ""
    warnings: list[str] = Field(default_factory=list)
    truncated: bool = False

    def judgement(self, dimension: Dimension | str) -> DimensionJudgement | None:
        """The judgement for ``dimension``, or None if the critique has none."""
        dim = Dimension.parse(dimension)
        return next((j for j in self.judgements if j.dimension is dim), None)

    def score(self, dimension: Dimension | str) -> float | None:
        """The score of ``dimension`` (None when N/A or missing)."""
        j = self.judgement(dimension)
        return None if j is None else j.score

    @property
    def scores(self) -> dict[str, float | None]:
        """Scores keyed by dimension key, in answer order."""
        return {j.dimension.value: j.score for j in self.judgements}

    @property
    def missing_dimensions(self) -> tuple[Dimension, ...]:
        """Dimensions of the task with no judgement (unreadable or not written; N/A is not missing)."""
        judged = {j.dimension for j in self.judgements}
        return tuple(d for d in TASK_DIMENSIONS[self.task] if d not in judged)

    def to_json(self, **kwargs: object) -> str:
        return self.model_dump_json(**kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, text: str | bytes) -> Critique:
        return cls.model_validate_json(text)


class PairwiseJudgement(BaseModel):
    """One dimension of a two-image comparison."""

    model_config = ConfigDict(frozen=True)

    dimension: Dimension
    score_a: float | None
    score_b: float | None
    winner: Winner | None = Field(default=None, description="None when N/A or not stated")
    justification: str = ""


class PairwiseCritique(BaseModel):
    """A comparison of candidate A against candidate B for one request."""

    model_config = ConfigDict(frozen=True)

    task: Task
    judgements: list[PairwiseJudgement]
    request_analysis: str | None = None
    summary: str | None = None
    raw_text: str = ""
    warnings: list[str] = Field(default_factory=list)
    truncated: bool = False

    def judgement(self, dimension: Dimension | str) -> PairwiseJudgement | None:
        dim = Dimension.parse(dimension)
        return next((j for j in self.judgements if j.dimension is dim), None)

    def totals(self) -> tuple[float, float]:
        """Sum of dimension scores for A and B, N/A counted as 2.5 on both sides."""
        total_a = sum(NA_PAIRWISE_SCORE if j.score_a is None else j.score_a for j in self.judgements)
        total_b = sum(NA_PAIRWISE_SCORE if j.score_b is None else j.score_b for j in self.judgements)
        return total_a, total_b

    def preference(self, tie_tolerance: float = 0.0) -> Winner:
        """Overall preference from the score totals; a tie only within ``tie_tolerance``."""
        return preference_from_totals(*self.totals(), tie_tolerance)

    def to_json(self, **kwargs: object) -> str:
        return self.model_dump_json(**kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, text: str | bytes) -> PairwiseCritique:
        return cls.model_validate_json(text)
