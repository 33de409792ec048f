"""Pairwise preference accuracy of a critic on human-labelled benchmarks (``gcr eval``).

``open_dataset`` reads MMRB2, GenAI-Bench or EditReward-Bench from local files
into :class:`PreferencePair` records; ``run_eval`` judges them with a critic,
concurrently and resumably; ``summarize`` and ``table1_rows`` turn the results
into data and into the paper's Table 1 layout; ``pairwise_accuracy`` is the
pure metric, reusable wherever predictions meet labels.
"""

from gcr.bench.eval.datasets import EvalDataset, PairKey, open_dataset
from gcr.bench.eval.layouts import LAYOUTS, Layout
from gcr.bench.eval.metrics import (
    Accuracy,
    AccuracyReport,
    pairwise_accuracy,
    preference_from_totals,
    wilson_interval,
)
from gcr.bench.eval.pairs import ImageRef, Label, PreferencePair
from gcr.bench.eval.report import PUBLISHED_ACCURACY, TABLE1_COLUMNS, summarize, table1_rows, write_summary
from gcr.bench.eval.runner import EvalOutcome, EvalSettings, PreferenceCritic, run_eval

__all__ = [
    "LAYOUTS",
    "PUBLISHED_ACCURACY",
    "TABLE1_COLUMNS",
    "Accuracy",
    "AccuracyReport",
    "EvalDataset",
    "EvalOutcome",
    "EvalSettings",
    "ImageRef",
    "Label",
    "Layout",
    "PairKey",
    "PreferenceCritic",
    "PreferencePair",
    "open_dataset",
    "pairwise_accuracy",
    "preference_from_totals",
    "run_eval",
    "summarize",
    "table1_rows",
    "wilson_interval",
    "write_summary",
]
