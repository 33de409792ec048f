"""Turn a critique into one reward in [0, 1].

``normalized_reward`` = (weighted mean of the selected dimension scores − 1) / 3.
Scores are clamped to [1, 4] first; N/A and missing dimensions are left out of
the mean (their weight is not counted), so a text-free prompt is not punished
for its N/A text rendering.

Default (``RewardSpec()``): every dimension the critique has a score for, with
equal weights. For an edit that is text faithfulness, image faithfulness,
physical and visual quality and (when text was requested) text rendering. This
follows the RationalRewards README, which averages all dimensions; note that
the upstream RL training code leaves image faithfulness out of its mean. To
reproduce that, select the dimensions explicitly::

    RewardSpec(dimensions=(Dimension.TEXT_FAITHFULNESS, Dimension.PHYSICAL_QUALITY,
                           Dimension.TEXT_RENDERING))
    RewardSpec.parse("text_faithfulness,physical_quality,text_rendering")

When no selected dimension has a score, there is no reward to give: a
:class:`~gcr.errors.RewardError` is raised rather than returning 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gcr.critic.schema import SCORE_MAX, SCORE_MIN, Critique, Dimension
from gcr.errors import ConfigError, GCRError, RewardError

#: Short names accepted by :meth:`RewardSpec.parse` besides keys and headers.
SHORT_NAMES = {
    "tf": Dimension.TEXT_FAITHFULNESS,
    "if": Dimension.IMAGE_FAITHFULNESS,
    "pq": Dimension.PHYSICAL_QUALITY,
    "tr": Dimension.TEXT_RENDERING,
}


def _dimension(value: Dimension | str) -> Dimension:
    if isinstance(value, str) and value.strip().lower() in SHORT_NAMES:
        return SHORT_NAMES[value.strip().lower()]
    try:
        return Dimension.parse(value)
    except GCRError as exc:
        raise ConfigError(f"reward spec: {exc}") from None


@dataclass(frozen=True)
class RewardSpec:
    """Which dimensions make up the reward, and how much each counts.

    ``dimensions=None`` selects every dimension; ``weights=None`` weighs them
    equally. A selected dimension without an entry in ``weights`` gets weight 1.
    Weights must be finite and non-negative, and the selected ones must not sum
    to zero.
    """

    dimensions: tuple[Dimension, ...] | None = None
    weights: Mapping[Dimension, float] | None = None

    def __post_init__(self) -> None:
        dims = None
        if self.dimensions is not None:
            dims = tuple(dict.fromkeys(_dimension(d) for d in self.dimensions))
            if not dims:
                raise ConfigError("reward spec selects no dimension; leave dimensions unset to use all")
        object.__setattr__(self, "dimensions", dims)
        if self.weights is None:
            return
        weights: dict[Dimension, float] = {}
        for key, value in self.weights.items():
            dim = _dimension(key)
            try:
                weight = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"reward spec: weight of {dim.value} is not a number: {value!r}") from None
            if not math.isfinite(weight) or weight < 0:
                raise ConfigError(f"reward spec: weight of {dim.value} must be finite and >= 0: {value!r}")
            if dims is not None and dim not in dims:
                raise ConfigError(f"reward spec: {dim.value} has a weight but is not a selected dimension")
            weights[dim] = weight
        # Canonical form: only weights other than the default 1 are kept, so equal specs compare equal.
        kept = {d: w for d, w in weights.items() if w != 1.0}
        object.__setattr__(self, "weights", MappingProxyType(kept) if kept else None)
        if sum(self.weight(d) for d in self.selected) <= 0:
            raise ConfigError("reward spec: the weights of the selected dimensions sum to zero")

    def __hash__(self) -> int:
        return hash((self.dimensions, tuple(sorted((self.weights or {}).items()))))

    @property
    def selected(self) -> tuple[Dimension, ...]:
        """The dimensions that count, in canonical order when none were chosen."""
        return self.dimensions if self.dimensions is not None else tuple(Dimension)

    def weight(self, dimension: Dimension) -> float:
        if self.weights is None:
            return 1.0
        return self.weights.get(dimension, 1.0)

    @classmethod
    def parse(cls, text: str) -> RewardSpec:
        """Read a CLI flag like ``"text_faithfulness=2,physical_quality=1"``.

        Items are separated by commas; each names a dimension (key, header, or
        ``tf``/``if``/``pq``/``tr``) with an optional ``=weight`` (default 1).
        The named dimensions are the selection. ``""`` or ``"all"`` means the
        default: all dimensions, equal weights.
        """
        text = text.strip()
        if text.lower() in ("", "all"):
            return cls()
        dims: list[Dimension] = []
        weights: dict[Dimension, float] = {}
        for item in text.split(","):
            name, sep, value = item.partition("=")
            if not name.strip():
                raise ConfigError(f"reward spec {text!r}: empty item; write e.g. 'text_faithfulness=2,pq=1'")
            dim = _dimension(name)
            if dim in weights:
                raise ConfigError(f"reward spec {text!r}: {dim.value} is named twice")
            try:
                weights[dim] = float(value) if sep else 1.0
            except ValueError:
                raise ConfigError(f"reward spec {text!r}: weight {value.strip()!r} is not a number") from None
            dims.append(dim)
        return cls(dimensions=tuple(dims), weights=weights)

    def __str__(self) -> str:
        if self.dimensions is None and self.weights is None:
            return "all dimensions, equal weights"
        return ",".join(f"{d.value}={self.weight(d):g}" for d in self.selected)


def normalized_reward(critique: Critique, spec: RewardSpec | None = None) -> float:
    """(Weighted mean of the available selected scores − 1) / 3, in [0, 1].

    Raises :class:`RewardError` when none of the selected dimensions has a score
    (all N/A or missing) or when only zero-weight dimensions have one.
    """
    spec = spec or RewardSpec()
    total = 0.0
    weight_sum = 0.0
    for dim in spec.selected:
        score = critique.score(dim)
        if score is None:
            continue
        weight = spec.weight(dim)
        total += weight * min(max(score, SCORE_MIN), SCORE_MAX)
        weight_sum += weight
    if weight_sum <= 0:
        names = ", ".join(d.value for d in spec.selected)
        raise RewardError(f"the critique has no score for any selected dimension with a weight > 0 ({names})")
    return (total / weight_sum - SCORE_MIN) / (SCORE_MAX - SCORE_MIN)
