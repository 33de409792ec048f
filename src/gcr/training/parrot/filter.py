"""PARROT phase 2, consistency filtering: keep a rationale only if it re-predicts the preference.

Checks, run in this order (each on the rationales that passed the earlier ones;
choose them with ``FilterSettings.checks``):

``scores``
    the comparison's own scores imply the labelled winner: the sum of A's
    dimension scores against B's (N/A counted as 2.5 on both sides), a tie only
    within ``tie_tolerance``.
``leak``
    the rationale never gives away that the teacher was told the answer
    (phrases such as "the raters" or "the given verdict"); a student trained on
    such text would learn to cite a label it will never see.
``predictor``
    a predictor model (the teacher or another one, behind the same kind of
    endpoint) gets the request, the images and the rationale with every score,
    winner line and the summary removed, and must pick the same winner. Its calls
    are concurrent and resumable (``predicted.jsonl``); a call that fails or an
    answer without a readable ``Preferred:`` line is retried on the next run, and
    until then the item counts as *pending*, neither kept nor dropped.

The report gives the survival rate overall (the paper kept about 72%), per
check, per task, origin and label, and per dimension the share of comparisons
whose dimension winner agrees with the label.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcr.critic.backends.base import ChatBackend, SamplingParams
from gcr.critic.parser import parse_pairwise
from gcr.critic.schema import PairwiseCritique, Winner
from gcr.errors import ConfigError, GCRError, RunError
from gcr.io import atomic_file, dump_line, read_jsonl
from gcr.task import Task
from gcr.training.parrot.anchor import model_name, templates_for
from gcr.training.parrot.answers import format_pairwise
from gcr.training.parrot.data import PreferenceItem, PreferenceSet
from gcr.training.parrot.jobs import STATUS_OK, Progress, ResultLog, failed_record, run_jobs
from gcr.training.parrot.prompts import render_predictor

logger = logging.getLogger(__name__)

CHECKS: tuple[str, ...] = ("scores", "leak", "predictor")
DEFAULT_LEAK_PHRASES: tuple[str, ...] = (
    "rater",
    "raters",
    "annotator",
    "annotators",
    "human verdict",
    "given verdict",
    "known verdict",
    "given preference",
    "known preference",
    "ground truth",
    "ground-truth",
    "was told",
    "were told",
)
_PREFERRED_RE = re.compile(r"preferred\s*[:：]\s*[*_`\s]*(?:image\s*)?(a|b|tie)\b", re.IGNORECASE)

#: Predictor sampling: near-greedy, short answers.
DEFAULT_PREDICTOR_SAMPLING = SamplingParams(temperature=0.0, max_tokens=512)


@dataclass(frozen=True)
class FilterSettings:
    """Which checks to run and how."""

    checks: tuple[str, ...] = CHECKS
    tie_tolerance: float = 0.0
    leak_phrases: tuple[str, ...] = DEFAULT_LEAK_PHRASES
    concurrency: int = 8
    sampling: SamplingParams = DEFAULT_PREDICTOR_SAMPLING

    def __post_init__(self) -> None:
        unknown = [c for c in self.checks if c not in CHECKS]
        if unknown or not self.checks:
            raise ConfigError(
                f"unknown filter check(s) {unknown or '(none given)'}: use some of {', '.join(CHECKS)}"
            )
        if self.tie_tolerance < 0:
            raise ConfigError(f"tie_tolerance must be 0 or more, got {self.tie_tolerance}")


def parse_predictor_answer(text: str) -> Winner:
    """The winner named on the answer's last ``Preferred: ...`` line; ``ValueError`` if there is none."""
    matches = _PREFERRED_RE.findall(text)
    if not matches:
        raise ValueError("the predictor's answer has no 'Preferred: Image A|Image B|Tie' line")
    value = matches[-1].lower()
    return "tie" if value == "tie" else value.upper()  # type: ignore[return-value]


def scores_winner(critique: PairwiseCritique, tie_tolerance: float = 0.0) -> Winner:
    """The winner the comparison's own score sums imply (the schema's one pairwise rule)."""
    return critique.preference(tie_tolerance)


def find_leak(text: str, phrases: tuple[str, ...]) -> str | None:
    """The first leak phrase found in ``text`` (whole words, any case), or None."""
    for phrase in phrases:
        if re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", text, re.IGNORECASE):
            return phrase
    return None


@dataclass
class FilterReport:
    """Counts and rates of one filtering pass (written to ``filter_report.json``)."""

    anchored: int = 0
    kept: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    checks: dict[str, dict[str, int]] = field(default_factory=dict)
    groups: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    dimensions: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def survival_rate(self) -> float | None:
        resolved = len(self.kept) + len(self.dropped)
        return len(self.kept) / resolved if resolved else None

    def to_dict(self) -> dict[str, Any]:
        def rate(d: dict[str, int]) -> dict[str, Any]:
            resolved = d.get("kept", 0) + d.get("dropped", 0)
            return {**d, "survival_rate": d.get("kept", 0) / resolved if resolved else None}

        return {
            "anchored": self.anchored,
            "kept": len(self.kept),
            "dropped": len(self.dropped),
            "pending": len(self.pending),
            "survival_rate": self.survival_rate,
            "checks": self.checks,
            "by_group": {g: {k: rate(v) for k, v in sorted(vals.items())} for g, vals in self.groups.items()},
            "dimensions": {
                d: {
                    **v,
                    "agreement_rate": v["agree"] / v["judged"] if v["judged"] else None,
                    "kept_agreement_rate": v["kept_agree"] / v["kept_judged"] if v["kept_judged"] else None,
                }
                for d, v in self.dimensions.items()
            },
            "dropped_items": dict(sorted(self.dropped.items())),
            "pending_items": dict(sorted(self.pending.items())),
        }


async def filter_rationales(
    prefs: PreferenceSet,
    anchored: Mapping[str, PairwiseCritique],
    *,
    predicted_log: str | Path,
    kept_path: str | Path,
    report_path: str | Path,
    predictor: ChatBackend | None = None,
    settings: FilterSettings | None = None,
    template_paths: Mapping[Task, str | Path] | None = None,
    progress: Progress | None = None,
) -> FilterReport:
    """Run the checks on the anchored comparisons; write the survivors and the report."""
    settings = settings or FilterSettings()
    if "predictor" in settings.checks and predictor is None:
        raise ConfigError(
            "the predictor check needs a predictor endpoint (or leave 'predictor' out of the checks)"
        )
    by_id = prefs.by_id()
    report = FilterReport(
        anchored=len(anchored), checks={c: {"checked": 0, "passed": 0} for c in settings.checks}
    )
    alive: dict[str, PairwiseCritique] = {}
    for key in sorted(anchored):
        critique, item = anchored[key], by_id[key]
        reason = _cheap_checks(critique, item, settings, report)
        if reason is None:
            alive[key] = critique
        else:
            report.dropped[key] = reason

    if "predictor" in settings.checks and alive:
        verdicts = await _predict(prefs, alive, predictor, predicted_log, settings, template_paths, progress)  # type: ignore[arg-type]
        stats = report.checks["predictor"]
        for key in list(alive):
            if key not in verdicts:
                report.pending[key] = "predictor call failed; rerun the filter to retry it"
                del alive[key]
                continue
            stats["checked"] += 1
            if verdicts[key] == by_id[key].label:
                stats["passed"] += 1
            else:
                report.dropped[key] = f"predictor chose {verdicts[key]}, label is {by_id[key].label}"
                del alive[key]
    report.kept = sorted(alive)
    _tally(report, anchored, by_id)
    _write_kept(kept_path, alive, by_id)
    Path(report_path).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    logger.info(
        "filter: %d of %d rationales kept (%d dropped, %d pending)",
        len(report.kept),
        report.anchored,
        len(report.dropped),
        len(report.pending),
    )
    return report


def _cheap_checks(
    critique: PairwiseCritique, item: PreferenceItem, settings: FilterSettings, report: FilterReport
) -> str | None:
    if "scores" in settings.checks:
        report.checks["scores"]["checked"] += 1
        implied = scores_winner(critique, settings.tie_tolerance)
        if implied != item.label:
            a, b = critique.totals()
            return f"scores imply {implied} (A {a:g}, B {b:g}), label is {item.label}"
        report.checks["scores"]["passed"] += 1
    if "leak" in settings.checks:
        report.checks["leak"]["checked"] += 1
        phrase = find_leak(format_pairwise(critique), settings.leak_phrases)
        if phrase is not None:
            return f"the rationale gives the label away ({phrase!r})"
        report.checks["leak"]["passed"] += 1
    return None


async def _predict(
    prefs: PreferenceSet,
    alive: Mapping[str, PairwiseCritique],
    backend: ChatBackend,
    log_path: str | Path,
    settings: FilterSettings,
    template_paths: Mapping[Task, str | Path] | None,
    progress: Progress | None,
) -> dict[str, Winner]:
    by_id = prefs.by_id()
    templates = templates_for("predict", {by_id[k].task for k in alive}, template_paths)
    model = await model_name(backend)

    async def work(key: str) -> dict[str, Any]:
        item = by_id[key]
        base = {"predictor": model, "template": templates[item.task].digest}
        try:
            request = render_predictor(templates[item.task], item, prefs.load_images(item), alive[key])
            answer = await backend.complete(request, settings.sampling)
        except GCRError as exc:
            return failed_record(key, exc, **base)
        text = str(answer)
        try:
            winner = parse_predictor_answer(text)
        except ValueError as exc:
            return failed_record(key, exc, raw_text=text, **base)
        return {"status": STATUS_OK, "predicted": winner, "raw_text": text, **base}

    log = ResultLog(log_path)
    await run_jobs(sorted(alive), work, log, concurrency=settings.concurrency, progress=progress)
    return {k: r["predicted"] for k, r in log.ok().items() if k in alive}


def _tally(
    report: FilterReport, anchored: Mapping[str, PairwiseCritique], by_id: Mapping[str, PreferenceItem]
) -> None:
    kept = set(report.kept)
    for key, critique in anchored.items():
        item = by_id[key]
        outcome = "kept" if key in kept else "dropped" if key in report.dropped else "pending"
        for group, value in (
            ("task", item.task.value),
            ("origin", item.origin or "-"),
            ("label", item.label),
        ):
            counts = report.groups.setdefault(group, {}).setdefault(
                value, {"anchored": 0, "kept": 0, "dropped": 0, "pending": 0}
            )
            counts["anchored"] += 1
            counts[outcome] += 1
        for j in critique.judgements:
            if j.winner is None:
                continue
            d = report.dimensions.setdefault(
                j.dimension.value, {"judged": 0, "agree": 0, "kept_judged": 0, "kept_agree": 0}
            )
            agree = j.winner == item.label
            d["judged"] += 1
            d["agree"] += agree
            if key in kept:
                d["kept_judged"] += 1
                d["kept_agree"] += agree


def _write_kept(
    path: str | Path, alive: Mapping[str, PairwiseCritique], by_id: Mapping[str, PreferenceItem]
) -> None:
    with atomic_file(path, "w") as fh:
        for key in sorted(alive):
            item = by_id[key]
            record = {
                "id": key,
                "task": item.task.value,
                "label": item.label,
                "answer": format_pairwise(alive[key]),
            }
            fh.write(dump_line(record))


def load_kept(path: str | Path, prefs: PreferenceSet) -> dict[str, PairwiseCritique]:
    """The kept comparisons, parsed back from ``kept.jsonl``."""
    by_id = prefs.by_id()
    out: dict[str, PairwiseCritique] = {}
    for _, record in read_jsonl(path, error=RunError):
        out[record["id"]] = parse_pairwise(record["answer"], by_id[record["id"]].task)
    return out
