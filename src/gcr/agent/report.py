"""A self-contained HTML report of one refine run.

One file, no scripts, no external styles: the rounds side by side, each
candidate with its per-dimension scores and the critic's justifications, the
prompt diff between consecutive rounds (word level, via :mod:`difflib`), and the
reward trajectory. Images are linked by paths relative to the report (the run
folder), or embedded as data URLs with ``embed_images=True`` for a single file
that can be mailed around.
"""

from __future__ import annotations

import difflib
import html
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gcr.agent.run_folder import RunFolder
from gcr.agent.state import CandidateRecord, RoundRecord
from gcr.critic.schema import Critique, Dimension
from gcr.images import load_image, to_data_url

logger = logging.getLogger(__name__)

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
.meta td{padding:2px 12px 2px 0;vertical-align:top}.meta td:first-child{color:#666}
.cands{display:flex;flex-wrap:wrap;gap:16px}
.cand{border:1px solid #ddd;border-radius:6px;padding:8px;width:280px}
.cand.best{border:2px solid #2a7;background:#f4fbf7}.cand.run-best{box-shadow:0 0 0 3px #fc3}
.cand img{width:100%;image-rendering:pixelated;border-radius:4px;background:#eee}
.scores{width:100%;border-collapse:collapse}.scores td{border-top:1px solid #eee;padding:2px 4px}
.scores td:last-child{text-align:right;font-variant-numeric:tabular-nums}
.prompt{background:#f7f7f7;padding:6px 8px;border-radius:4px;white-space:pre-wrap}
del{background:#fdd;color:#900}ins{background:#dfd;color:#060;text-decoration:none}
.skip{color:#a33}.note{color:#666;font-size:.9em}details{margin-top:4px}summary{cursor:pointer;color:#247}
.reward{font-size:1.1em;font-weight:600}
"""


_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


def diff_prompts(before: str, after: str) -> list[tuple[str, str]]:
    """Word-level diff of two prompts as ``(kind, text)`` runs, kind ``same``, ``del`` or ``ins``.

    Words, punctuation and spaces are separate tokens, so ``table`` → ``table, golden light``
    reads as one insertion (``, golden light``) rather than a replaced word.
    """
    a, b = _TOKEN.findall(before), _TOKEN.findall(after)
    runs: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            runs.append(("same", "".join(a[i1:i2])))
            continue
        if op in ("delete", "replace"):
            runs.append(("del", "".join(a[i1:i2])))
        if op in ("insert", "replace"):
            runs.append(("ins", "".join(b[j1:j2])))
    return runs


def prompt_diff_html(before: str, after: str) -> str:
    """The diff of two prompts in HTML: removed text in ``<del>``, added text in ``<ins>``."""
    tags = {"del": "<del>{}</del>", "ins": "<ins>{}</ins>", "same": "{}"}
    return "".join(tags[kind].format(html.escape(text)) for kind, text in diff_prompts(before, after))


def render_report(
    folder: RunFolder,
    summary: Mapping[str, Any],
    rounds: Sequence[RoundRecord],
    candidates: Sequence[CandidateRecord],
    *,
    embed_images: bool = False,
) -> str:
    """The report's HTML text."""
    esc = html.escape
    best = summary.get("best") or {}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>gcr refine: {esc(str(summary.get('prompt', '')))[:80]}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Generate-Critique-Refine run</h1>",
        f"<p class='prompt'>{esc(str(summary.get('prompt', '')))}</p>",
        _meta_table(summary),
        _trajectory_svg([r["best_reward"] for r in rounds]),
    ]
    sources = summary.get("source_images") or []
    if sources:
        parts.append("<h2>Source image(s)</h2><div class='cands'>")
        for src in sources:
            image = _src(folder, src, embed_images)
            parts.append(f"<div class='cand'><img src='{image}' alt='source'></div>")
        parts.append("</div>")
    if best:
        parts.append(
            "<h2>Best image</h2><div class='cands'><div class='cand run-best'>"
            f"<img src='{_src(folder, best['image'], embed_images)}' alt='best image'>"
            f"<div class='reward'>reward {best['reward']:.3f}</div>"
            f"<div class='note'>round {best['round']}, candidate {best['candidate']}, "
            f"seed {best['seed']}</div>{_scores_table(best.get('scores') or {})}"
            f"<p class='prompt'>{esc(best['prompt'])}</p></div></div>"
        )
    previous_prompt: str | None = None
    for record in rounds:
        parts.append(_round_html(folder, record, candidates, previous_prompt, best, embed_images))
        previous_prompt = record["prompt"]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    folder: RunFolder,
    summary: Mapping[str, Any],
    rounds: Sequence[RoundRecord],
    candidates: Sequence[CandidateRecord],
    *,
    embed_images: bool = False,
) -> Path:
    """Write ``report.html`` into the run folder and return its path."""
    text = render_report(folder, summary, rounds, candidates, embed_images=embed_images)
    return folder.write_text(RunFolder.REPORT, text)


def _meta_table(summary: Mapping[str, Any]) -> str:
    timings = summary.get("timings") or {}

    def fmt(value: Any) -> str:
        return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    rows = [
        ("task", summary.get("task")),
        ("generator", summary.get("generator")),
        ("critic", summary.get("critic")),
        ("refiner", summary.get("refiner")),
        ("rounds", summary.get("rounds")),
        ("images generated", summary.get("generations")),
        ("reward, first round", fmt(summary.get("start_reward"))),
        ("reward, best", fmt(summary.get("final_reward"))),
        ("stopped because", f"{summary.get('stop_reason')}: {summary.get('stop_detail')}"),
        (
            "time (s)",
            ", ".join(
                f"{k.removesuffix('_s')} {v:.2f}" for k, v in timings.items() if isinstance(v, int | float)
            ),
        ),
    ]
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table class='meta'>{body}</table>"


def _trajectory_svg(rewards: Sequence[float]) -> str:
    if len(rewards) < 2:
        return ""
    width, height, pad = 320, 90, 10
    step = (width - 2 * pad) / (len(rewards) - 1)
    points = [(pad + i * step, height - pad - r * (height - 2 * pad)) for i, r in enumerate(rewards)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(
        f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3'><title>round {i}: {r:.3f}</title></circle>"
        for i, ((x, y), r) in enumerate(zip(points, rewards, strict=True))
    )
    return (
        f"<p class='note'>best reward per round (0 to 1)</p><svg width='{width}' height='{height}' "
        f"style='background:#fafafa;border:1px solid #eee'><polyline fill='none' stroke='#2a7' "
        f"stroke-width='2' points='{line}'/>{dots}</svg>"
    )


def _round_html(
    folder: RunFolder,
    record: RoundRecord,
    candidates: Sequence[CandidateRecord],
    previous_prompt: str | None,
    best: Mapping[str, Any],
    embed_images: bool,
) -> str:
    esc = html.escape
    index = record["round"]
    if previous_prompt is None:
        prompt_html = esc(record["prompt"])
    else:
        prompt_html = prompt_diff_html(previous_prompt, record["prompt"])
    out = [
        f"<h2>Round {index}</h2>",
        f"<p class='note'>prompt from: {esc(record['prompt_origin'])}"
        + (" (changes against the previous round marked)" if previous_prompt is not None else "")
        + "</p>",
        f"<p class='prompt'>{prompt_html}</p><div class='cands'>",
    ]
    for cand in (c for c in candidates if c["round"] == index):
        classes = ["cand"]
        if cand["index"] == record["best_index"]:
            classes.append("best")
        if best and best.get("round") == index and best.get("candidate") == cand["index"]:
            classes.append("run-best")
        out.append(f"<div class='{' '.join(classes)}'>")
        out.append(f"<img src='{_src(folder, cand['image'], embed_images)}' alt='round {index} candidate'>")
        out.append(f"<div class='note'>candidate {cand['index']}, seed {cand['seed']}</div>")
        if cand["status"] == "skipped":
            out.append(f"<p class='skip'>skipped: {esc(str(cand['skip_reason']))}</p>")
        else:
            out.append(f"<div class='reward'>reward {cand['reward']:.3f}</div>")
            out.append(_scores_table(cand["scores"]))
            out.append(_critique_details(folder, cand))
        out.append("</div>")
    out.append("</div>")
    veto = record.get("veto")
    if veto:
        out.append(_veto_note(veto))
    refinement = record.get("refinement")
    if refinement:
        verdict = "accepted" if refinement["accepted"] else "turned down"
        out.append(
            f"<p class='note'>refiner <b>{esc(refinement['refiner'])}</b> proposed "
            f"({verdict}{': ' + esc(refinement['reason']) if refinement['reason'] else ''}):</p>"
            f"<p class='prompt'>{esc(refinement['proposed'] or '(nothing)')}</p>"
        )
    review = record.get("review")
    if review:
        out.append(f"<p class='note'>reviewed: {esc(review['action'])}</p>")
    return "\n".join(out)


def _veto_note(veto: Mapping[str, Any]) -> str:
    """One line on the cross-judge veto's check of this round's best (see gcr.agent.veto)."""
    esc = html.escape

    def score(value: float | None) -> str:
        return "failed" if value is None else f"{value:.3f}"

    outcome = {
        "vetoed": "<b>vetoed</b>: the run kept its current best",
        "accepted": "accepted",
        "failed": f"judge failed, the critic's choice stood ({esc(str(veto.get('error')))})",
    }[veto["status"]]
    return (
        f"<p class='note'>veto judge {esc(str(veto['judge']))}: current best {score(veto['current_score'])}, "
        f"this round's best {score(veto['candidate_score'])} (allowed fall {veto['drop']:g}): {outcome}</p>"
    )


def _scores_table(scores: Mapping[str, float | None]) -> str:
    rows = []
    for key, score in scores.items():
        try:
            name = Dimension(key).header
        except ValueError:
            name = key
        value = "N/A" if score is None else f"{score:g}"
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{value}</td></tr>")
    return f"<table class='scores'>{''.join(rows)}</table>"


def _critique_details(folder: RunFolder, cand: CandidateRecord) -> str:
    recorded = cand.get("critique_json")
    path = folder.resolve(recorded) if recorded else None
    if path is None or not path.is_file():
        return ""
    try:
        critique = Critique.from_json(path.read_text("utf-8"))
    except ValueError as exc:
        logger.warning("cannot read critique %s for the report: %s", path, exc)
        return ""
    items = "".join(
        f"<p><b>{html.escape(j.dimension.header)}</b>: {html.escape(j.justification)}</p>"
        for j in critique.judgements
    )
    summary = f"<p><b>Summary</b>: {html.escape(critique.summary)}</p>" if critique.summary else ""
    return f"<details><summary>critique</summary>{items}{summary}</details>"


def _src(folder: RunFolder, recorded: str, embed: bool) -> str:
    path = folder.resolve(recorded)  # records hold paths relative to the run folder
    if embed:
        return to_data_url(load_image(path))
    try:
        rel = os.path.relpath(path, folder.path)
    except ValueError:  # another drive on Windows
        rel = path
    return html.escape(Path(rel).as_posix(), quote=True)
