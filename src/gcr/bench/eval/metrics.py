"""Pairwise preference accuracy, its confidence interval and its breakdowns.

Rules (docs/eval.md, as upstream evaluates):

* A prediction is ``"A"``, ``"B"`` or ``"tie"``, made from the sum of the
  dimension scores of each candidate (N/A counted as 2.5 on both sides); it is
  a tie only when the two sums differ by at most the tie tolerance (default 0:
  exact equality, up to float rounding of 1e-9).
* Ties are a third class. A prediction is correct only when it equals the
  label: a predicted tie is right for a labelled tie and wrong for a labelled
  A or B; a labelled tie is right only when a tie is predicted.
* accuracy = correct / evaluated. Pairs whose inference failed (``None``
  prediction) and pairs with an unknown label are left out of the denominator
  and reported as counts, never silently dropped.
* The 95% interval is the Wilson score interval, which stays inside [0, 1]
  and behaves at small counts and at accuracies near 0 or 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist

from gcr.critic.schema import preference_from_totals
from gcr.errors import InputError

__all__ = [
    "PREFERENCES",
    "Accuracy",
    "AccuracyReport",
    "OrderAgreement",
    "order_agreement",
    "pairwise_accuracy",
    "preference_from_totals",
    "wilson_interval",
]

PREFERENCES: tuple[str, ...] = ("A", "B", "tie")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion; ``None`` when ``n`` is 0."""
    if n < 0 or successes < 0 or successes > n:
        raise InputError(f"need 0 <= successes <= n, got {successes} of {n}")
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be between 0 and 1, not {confidence}")
    if n == 0:
        return None
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Accuracy:
    """Accuracy over one set of pairs, with every excluded pair accounted for."""

    total: int
    evaluated: int
    correct: int
    failed: int
    unknown_labels: int
    label_ties: int
    predicted_ties: int
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    #: Accuracy over the evaluated pairs whose label is not a tie (None if there are none).
    accuracy_without_label_ties: float | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class AccuracyReport:
    """Overall accuracy plus the same figures per category (when categories are given)."""

    overall: Accuracy
    by_category: dict[str, Accuracy] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "overall": self.overall.to_dict(),
            "by_category": {k: v.to_dict() for k, v in self.by_category.items()},
        }


def _check(value: str | None, allowed: tuple[str, ...], what: str, index: int) -> None:
    if value is not None and value not in allowed:
        raise InputError(f"{what} {index} is {value!r}; use one of {', '.join(allowed)} or None")


def _accuracy(pairs: Iterable[tuple[str | None, str | None]], confidence: float) -> Accuracy:
    total = evaluated = correct = failed = unknown = label_ties = predicted_ties = 0
    decisive = decisive_correct = 0
    for prediction, label in pairs:
        total += 1
        if label is None or label == "unknown":
            unknown += 1
            continue
        if prediction is None:
            failed += 1
            continue
        evaluated += 1
        hit = prediction == label
        correct += hit
        label_ties += label == "tie"
        predicted_ties += prediction == "tie"
        if label != "tie":
            decisive += 1
            decisive_correct += hit
    interval = wilson_interval(correct, evaluated, confidence)
    return Accuracy(
        total=total,
        evaluated=evaluated,
        correct=correct,
        failed=failed,
        unknown_labels=unknown,
        label_ties=label_ties,
        predicted_ties=predicted_ties,
        accuracy=correct / evaluated if evaluated else None,
        ci_low=None if interval is None else interval[0],
        ci_high=None if interval is None else interval[1],
        accuracy_without_label_ties=decisive_correct / decisive if decisive else None,
    )


def pairwise_accuracy(
    predictions: Sequence[str | None],
    labels: Sequence[str | None],
    *,
    categories: Sequence[str | None] | None = None,
    confidence: float = 0.95,
) -> AccuracyReport:
    """Accuracy of ``predictions`` against human ``labels``, pair by pair.

    ``predictions[i]`` is ``"A"``, ``"B"``, ``"tie"``, or ``None`` when the
    critic failed on pair ``i``; ``labels[i]`` is ``"A"``, ``"B"``, ``"tie"``,
    or ``"unknown"``/``None`` when the label could not be read. Failed pairs and
    unknown labels are counted and left out of the denominator. With
    ``categories`` the same figures are computed per category (pairs whose
    category is ``None`` count only in the overall figures).
    """
    if len(predictions) != len(labels):
        raise InputError(f"{len(predictions)} predictions but {len(labels)} labels")
    if categories is not None and len(categories) != len(labels):
        raise InputError(f"{len(categories)} categories but {len(labels)} labels")
    for i, (pred, label) in enumerate(zip(predictions, labels, strict=True)):
        _check(pred, PREFERENCES, "prediction", i)
        _check(label, (*PREFERENCES, "unknown"), "label", i)
    overall = _accuracy(zip(predictions, labels, strict=True), confidence)
    by_category: dict[str, Accuracy] = {}
    if categories is not None:
        groups: dict[str, list[tuple[str | None, str | None]]] = {}
        for pred, label, cat in zip(predictions, labels, categories, strict=True):
            if cat is not None:
                groups.setdefault(cat, []).append((pred, label))
        by_category = {cat: _accuracy(groups[cat], confidence) for cat in sorted(groups)}
    return AccuracyReport(overall=overall, by_category=by_category)


@dataclass(frozen=True)
class OrderAgreement:
    """How a critic's verdicts on the same pairs change when the candidates are shown swapped."""

    #: Pairs judged successfully in both orders.
    pairs: int
    #: Of those, pairs whose (A, B) verdict differs from their (B, A) verdict (read back as A/B).
    flips: int
    flip_rate: float | None
    #: Accuracy of each order alone over those pairs whose label is known.
    accuracy_ab: float | None
    accuracy_ba: float | None
    #: Correct judgements over all judgements of both orders (what the MMRB2 official scorer reports).
    accuracy_per_judgement: float | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def order_agreement(verdicts: Iterable[tuple[str, str, str | None]]) -> OrderAgreement:
    """Compare ``(verdict in order AB, verdict in order BA, label)`` triples, all in the pair's A/B terms.

    The label may be ``None``/``"unknown"``: such a pair counts for the flip rate only.
    """
    pairs = flips = labelled = hits_ab = hits_ba = 0
    for ab, ba, label in verdicts:
        _check(ab, PREFERENCES, "verdict", pairs)
        _check(ba, PREFERENCES, "verdict", pairs)
        pairs += 1
        flips += ab != ba
        if label is not None and label != "unknown":
            labelled += 1
            hits_ab += ab == label
            hits_ba += ba == label
    return OrderAgreement(
        pairs=pairs,
        flips=flips,
        flip_rate=flips / pairs if pairs else None,
        accuracy_ab=hits_ab / labelled if labelled else None,
        accuracy_ba=hits_ba / labelled if labelled else None,
        accuracy_per_judgement=(hits_ab + hits_ba) / (2 * labelled) if labelled else None,
    )
