"""The evaluation summary as plain data, and the paper's Table 1 with our figure beside it.

Nothing here renders: :func:`summarize` returns a JSON-ready dict and
:func:`table1_rows` the rows of a table in the columns of the RationalRewards
paper's Table 1; the CLI draws them with rich.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from gcr.bench.eval.datasets import EvalDataset
from gcr.bench.eval.metrics import order_agreement, pairwise_accuracy, preference_from_totals
from gcr.bench.eval.output import SUMMARY_FILE
from gcr.bench.eval.runner import EvalOutcome, EvalSettings

#: The columns of the paper's Table 1 (pairwise preference accuracy, %), in its order.
TABLE1_COLUMNS: tuple[str, ...] = ("MMRB2 T2I", "MMRB2 Edit", "EditReward", "GenAI T2I", "GenAI Edit")

#: The Table 1 column each dataset layout is measured in.
LAYOUT_COLUMN: dict[str, str] = {
    "mmrb2-t2i": "MMRB2 T2I",
    "mmrb2-edit": "MMRB2 Edit",
    "editreward": "EditReward",
    "genai-t2i": "GenAI T2I",
    "genai-edit": "GenAI Edit",
}

#: The released model, whose published figures ``gcr eval`` should reproduce.
REFERENCE_MODEL = "RationalRewards (Qwen3-VL-8B)"

#: Published pairwise accuracy (%), RationalRewards paper (arXiv 2604.11626), Table 1.
PUBLISHED_ACCURACY: dict[str, dict[str, float]] = {
    REFERENCE_MODEL: {
        "MMRB2 T2I": 64.2, "MMRB2 Edit": 70.3, "EditReward": 66.2, "GenAI T2I": 69.8, "GenAI Edit": 80.1,
    },
    "Qwen3-VL-8B as plain judge": {
        "MMRB2 T2I": 59.4, "MMRB2 Edit": 61.7, "EditReward": 51.9, "GenAI T2I": 55.1, "GenAI Edit": 50.1,
    },
    "Gemini 2.5 Pro": {
        "MMRB2 T2I": 70.5, "MMRB2 Edit": 71.3, "EditReward": 71.3, "GenAI T2I": 66.2, "GenAI Edit": 78.9,
    },
}

_EXAMPLE_FAILURES = 5


def summarize(
    outcome: EvalOutcome,
    dataset: EvalDataset,
    settings: EvalSettings,
    *,
    tie_tolerance: float = 0.0,
    critic: str | None = None,
) -> dict[str, Any]:
    """Everything a reader needs about one evaluation, as JSON-ready data."""
    predictions: list[str | None] = []
    labels: list[str] = []
    categories: list[str | None] = []
    not_judged = 0
    failure_types: Counter[str] = Counter()
    failure_examples: list[dict[str, str]] = []
    predicted: Counter[str] = Counter()
    verdicts: list[tuple[str, str, str]] = []
    for key in outcome.keys:
        if key.label == "unknown":
            predictions.append(None)
            labels.append("unknown")
            categories.append(key.category)
            continue
        found = [outcome.records.get((key.id, order)) for order in settings.orders]
        failed = [r for r in found if r is not None and r.get("status") != "ok"]
        if not failed and None in found:
            not_judged += 1  # an interrupted run: neither judged nor failed yet
            continue
        if failed:
            error = failed[0].get("error") or {}
            failure_types[error.get("type", "unknown error")] += 1
            if len(failure_examples) < _EXAMPLE_FAILURES:
                failure_examples.append(
                    {"id": key.id, "type": error.get("type", ""), "message": error.get("message", "")}
                )
            predictions.append(None)
        else:
            done = [r for r in found if r is not None]
            # Both orders: the mean of the two orders' score sums decides (position bias cancels out).
            total_a = sum(r["total_a"] for r in done) / len(done)
            total_b = sum(r["total_b"] for r in done) / len(done)
            pred = preference_from_totals(total_a, total_b, tie_tolerance)
            predicted[pred] += 1
            predictions.append(pred)
            if len(done) == 2:
                ab, ba = (preference_from_totals(r["total_a"], r["total_b"], tie_tolerance) for r in done)
                verdicts.append((ab, ba, key.label))
        labels.append(key.label)
        categories.append(key.category)
    report = pairwise_accuracy(predictions, labels, categories=categories)
    column = LAYOUT_COLUMN.get(dataset.layout.name)
    published = (
        {model: figures[column] for model, figures in PUBLISHED_ACCURACY.items() if column in figures}
        if column
        else {}
    )
    judged_now = outcome.requested
    return {
        "dataset": {
            "path": str(dataset.path),
            "name": dataset.name,
            "layout": dataset.layout.name,
            "benchmark": dataset.layout.title,
            "layout_detected": dataset.detected,
            "rows": len(dataset),
        },
        "settings": {
            "mode": settings.mode,
            "critic": critic,
            "tie_tolerance": tie_tolerance,
            "concurrency": settings.concurrency,
            "limit": settings.limit,
            "both_orders": settings.both_orders,
        },
        "counts": {
            "rows_in_scope": len(outcome.keys),
            "unknown_labels": report.overall.unknown_labels,
            "evaluated": report.overall.evaluated,
            "failed": report.overall.failed,
            "not_judged": not_judged,
            "judged_this_run": judged_now,
            "reused_from_earlier_runs": outcome.reused,
        },
        "accuracy": report.overall.to_dict(),
        "by_category": {k: v.to_dict() for k, v in report.by_category.items()},
        "predictions": {p: predicted.get(p, 0) for p in ("A", "B", "tie")},
        "order_agreement": order_agreement(verdicts).to_dict() if settings.both_orders else None,
        "failures": {"by_type": dict(failure_types.most_common()), "examples": failure_examples},
        "table1_column": column,
        "published": published,
        "elapsed_s": round(outcome.elapsed_s, 3),
        "pairs_per_minute": round(60 * judged_now / outcome.elapsed_s, 2) if outcome.elapsed_s > 0 else None,
        "out_dir": str(outcome.out_dir),
    }


def write_summary(summary: dict[str, Any], out_dir: str | Path) -> Path:
    """Save the summary as ``summary.json`` in the run folder."""
    path = Path(out_dir) / SUMMARY_FILE
    path.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def format_accuracy(accuracy: float | None, low: float | None = None, high: float | None = None) -> str:
    """``"66.7 (61.2–71.8)"``: percent with one decimal and the interval; ``"–"`` when undefined."""
    if accuracy is None:
        return "–"
    text = f"{100 * accuracy:.1f}"
    if low is not None and high is not None:
        text += f" ({100 * low:.1f}–{100 * high:.1f})"
    return text


def table1_rows(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in Table 1's columns: the paper's models, then ours, then our difference to the paper.

    Each row is ``{"model": str, "source": "paper" | "ours" | "delta", "cells": {column: text}}``;
    a column without a figure is absent from ``cells``.
    """
    rows: list[dict[str, Any]] = [
        {"model": f"{model} (paper)", "source": "paper", "cells": {c: f"{v:.1f}" for c, v in figures.items()}}
        for model, figures in PUBLISHED_ACCURACY.items()
    ]
    ours: dict[str, dict[str, str]] = {}
    deltas: dict[str, dict[str, str]] = {}
    for summary in summaries:
        column = summary.get("table1_column")
        if column is None:
            continue
        settings = summary["settings"]
        how = f"{settings['mode']}, both orders" if settings.get("both_orders") else settings["mode"]
        name = f"{settings.get('critic') or 'critic'} ({how}, ours)"
        acc = summary["accuracy"]
        ours.setdefault(name, {})[column] = format_accuracy(acc["accuracy"], acc["ci_low"], acc["ci_high"])
        reference = PUBLISHED_ACCURACY[REFERENCE_MODEL].get(column)
        if acc["accuracy"] is not None and reference is not None:
            deltas.setdefault(name, {})[column] = f"{100 * acc['accuracy'] - reference:+.1f}"
    for name, cells in ours.items():
        rows.append({"model": name, "source": "ours", "cells": cells})
        if name in deltas:
            label = f"  Δ vs {REFERENCE_MODEL} (paper)"
            rows.append({"model": label, "source": "delta", "cells": deltas[name]})
    return rows
