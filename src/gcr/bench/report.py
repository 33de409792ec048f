"""``summary.json`` and a self-contained ``report.html`` for a benchmark folder.

Both are built from the folder alone (``bench.json``, every result file, every
session), so the same code makes the report at the end of a run, when the last
shard of a sharded run finishes, and in ``gcr bench merge OUT``. The HTML is one
file: plots are PNG files made with matplotlib and embedded as base64, and the
gallery's images are embedded as thumbnails.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from gcr.bench.folder import REPORT_FILE, SUMMARY_FILE, BenchFolder
from gcr.bench.plots import render_plots
from gcr.bench.stats import summarize_records
from gcr.critic.schema import Dimension
from gcr.errors import GCRError
from gcr.io import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)

THUMBNAIL_PX = 224

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1150px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.note{color:#666;font-size:.9em}
.plots img{max-width:100%;margin:8px 0}.cards{display:flex;flex-wrap:wrap;gap:14px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px;width:490px}
.pair{display:flex;gap:6px}.pair figure{margin:0;flex:1}.pair img{width:100%;border-radius:4px}
figcaption{font-size:.85em;color:#555}.prompt{background:#f7f7f7;padding:4px 6px;border-radius:4px}
.fail{color:#a33}
"""


def build_summary(folder: BenchFolder) -> dict[str, Any]:
    """The content of ``summary.json``: the folder's settings and every figure of :mod:`gcr.bench.stats`."""
    settings = folder.settings()
    records = folder.records("results")
    baselines = folder.records("baseline")
    figures = summarize_records(records, baselines, folder.sessions())
    figures.update(_judge_summary(folder, records, baselines))
    return {
        "out_dir": str(folder.path),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "prompt_set": settings.get("prompt_set"),
        "task": settings.get("task"),
        "generator": settings.get("generator"),
        "critic": settings.get("critic"),
        "refiner": settings.get("refiner"),
        "refine_settings": settings.get("refine"),
        **figures,
    }


def _judge_summary(
    folder: BenchFolder, records: Mapping[str, Mapping[str, Any]], baselines: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """``judges`` (independent judges' figures) and ``veto`` (cross-judge veto counts), when there are any."""
    from gcr.bench.judge_stats import judge_figures, veto_figures
    from gcr.bench.judging import read_judgements

    rows = sorted(
        (r for r in records.values() if r.get("status") == "ok" and r.get("final_reward") is not None),
        key=lambda r: r["id"],
    )
    out: dict[str, Any] = {}
    judges = judge_figures(rows, baselines, read_judgements(folder))
    if judges is not None:
        out["judges"] = judges
    veto = veto_figures(rows)
    if veto is not None:
        out["veto"] = veto
    return out


def write_bench_report(folder: BenchFolder) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``report.html`` into the folder; returns both paths."""
    summary = build_summary(folder)
    summary_path = folder.path / SUMMARY_FILE
    write_json_atomic(summary_path, summary)
    records = folder.records("results")
    baselines = folder.records("baseline")
    text = render_html(folder, summary, records, baselines)
    report_path = folder.path / REPORT_FILE
    # Two shards finishing together may both write the report: each through its own temporary file.
    write_text_atomic(report_path, text)
    return summary_path, report_path


# --------------------------------------------------------------------------- HTML


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(figure: Mapping[str, Any] | None) -> str:
    if not figure or figure.get("mean") is None:
        return "–"
    if figure.get("ci_low") is None:
        return f"{figure['mean']:.3f}"
    return f"{figure['mean']:.3f} [{figure['ci_low']:.3f}, {figure['ci_high']:.3f}]"


def _rate(figure: Mapping[str, Any] | None) -> str:
    if not figure or figure.get("rate") is None:
        return "–"
    return (
        f"{figure['rate']:.1%} [{figure['ci_low']:.1%}, {figure['ci_high']:.1%}] "
        f"({figure['wins']} won, {figure['ties']} tied, {figure['losses']} lost of {figure['n']})"
    )


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    head = "" if header is None else "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table>{head}{body}</table>"


def _dimension_name(key: str) -> str:
    try:
        return Dimension(key).header
    except ValueError:
        return key


def render_html(
    folder: BenchFolder,
    summary: Mapping[str, Any],
    records: Mapping[str, Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Any]],
) -> str:
    """The report's HTML text."""
    esc = html.escape
    reward, rounds, counts = summary["reward"], summary["rounds"], summary["counts"]
    prompt_set = summary.get("prompt_set") or {}
    name = esc(str(prompt_set.get("name", "")))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>gcr bench: {name}</title><style>{_STYLE}</style></head><body>",
        f"<h1>gcr bench: {name}</h1>",
        _table(
            [
                ("prompt set", f"{prompt_set.get('name')} ({prompt_set.get('cases')} prompts)"),
                ("task", summary["task"]),
                ("generator", summary.get("generator") or "default for the task"),
                ("critic", summary.get("critic")),
                ("refiner", summary.get("refiner")),
                ("finished / failed", f"{counts['finished']} / {counts['failed']}"),
                ("results", summary["out_dir"]),
            ]
        ),
        "<h2>Reward</h2>",
        "<p class='note'>Normalized reward (0-1), mean over prompts with a 95% t interval. Initial: "
        "best image of round 0 (the user's prompt); final: best image of the run; last: best image "
        "of the last round.</p>",
        _table(
            [
                ("initial (round 0)", _ci(reward["initial"])),
                ("final (kept)", _ci(reward["final"])),
                ("last round", _ci(reward["last"])),
                ("final - initial", _ci(reward["delta"])),
                ("win rate, final over initial", _rate(reward["win_rate"])),
            ]
        ),
    ]
    dims = summary["dimensions"]
    if dims:
        parts.append(
            "<h2>Per dimension</h2><p class='note'>Scores 1-4 of the round-0 best and the final "
            "image, on prompts where both scored the dimension.</p>"
        )
        parts.append(
            _table(
                [
                    (
                        _dimension_name(k),
                        d["n"],
                        _fmt(d["initial_mean"]),
                        _fmt(d["final_mean"]),
                        _ci(d["delta"]),
                    )
                    for k, d in dims.items()
                ],
                ("dimension", "n", "initial", "final", "delta [95% CI]"),
            )
        )
    baseline = summary.get("baseline")
    if baseline:
        parts += [
            "<h2>Against best-of-n sampling</h2>",
            "<p class='note'>The same number of plain generations of the user's prompt per prompt "
            "(equal compute), each scored, the best kept.</p>",
            _table(
                [
                    ("prompts", baseline["n"]),
                    ("best-of-n", _ci(baseline["baseline"])),
                    ("refine (final)", _ci(baseline["refine"])),
                    ("refine - best-of-n", _ci(baseline["delta"])),
                    ("win rate, refine over best-of-n", _rate(baseline["win_rate"])),
                    (
                        "generations (refine / best-of-n)",
                        f"{baseline['refine_generations']} / {baseline['baseline_generations']}",
                    ),
                ]
            ),
        ]
    if summary.get("judges") or summary.get("veto"):
        from gcr.bench.judge_report import judges_html
        from gcr.bench.judging import read_judgements

        parts.append(judges_html(folder, summary, records, read_judgements(folder)))
    parts.append("<h2>Rounds and stopping</h2>")
    parts.append(
        _table(
            [
                ("mean rounds", _fmt(rounds["mean_rounds"], 2)),
                ("rounds used", ", ".join(f"{k}: {v}" for k, v in rounds["histogram"].items())),
                ("stop reasons", ", ".join(f"{k}: {v}" for k, v in rounds["stop_reasons"].items())),
                ("images generated (refine runs)", rounds["generations"]),
            ]
        )
    )
    if summary["categories"]:
        parts.append("<h2>By category</h2>")
        parts.append(
            _table(
                [
                    (
                        name,
                        c["n"],
                        _fmt(c["initial_mean"]),
                        _fmt(c["final_mean"]),
                        _fmt(c["delta_mean"]),
                        _fmt(c["win_rate"], 2),
                    )
                    for name, c in summary["categories"].items()
                ],
                ("category", "n", "initial", "final", "delta", "win rate"),
            )
        )
    parts.append(_throughput_html(summary))
    parts.append("<h2>Plots</h2><div class='plots'>")
    for name, png in render_plots(summary):
        parts.append(f"<img alt='{esc(name)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    parts.append("</div>")
    parts.append(_gallery_html(folder, summary["gallery"], records, baselines))
    if summary["failures"]:
        parts.append("<h2>Failed prompts</h2><p class='note'>Rerun the same command to retry them.</p>")
        parts.append(
            _table(
                [(f["id"], f.get("type", ""), f.get("message", "")) for f in summary["failures"]],
                ("id", "error", "message"),
            )
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def _throughput_html(summary: Mapping[str, Any]) -> str:
    t = summary["throughput"]
    split = summary["time_by_stage"]["refine_runs"]
    wall = t["wall_s"] or 0.0

    def util(busy: float) -> str:
        return f"{busy:.1f} s ({busy / wall:.0%} of wall)" if wall else f"{busy:.1f} s"

    rows = [
        ("images per minute", _fmt(t["images_per_min"], 1)),
        ("critiques per minute", _fmt(t["critiques_per_min"], 1)),
        ("wall time (s, loading excluded)", _fmt(wall, 1)),
        ("model loading (s)", _fmt(t["load_s"], 1)),
        ("generator busy", util(t["generator_busy_s"])),
        ("critic busy (any request in flight)", util(t["critic_busy_s"])),
        ("both busy at once", util(t["overlap_s"])),
        ("most critic requests in flight", t["critic_peak_in_flight"]),
        ("sessions", t["sessions"]),
    ]
    stage = [(k.removesuffix("_s"), _fmt(v, 1)) for k, v in split.items()]
    return (
        "<h2>Throughput and time by stage</h2>"
        + _table(rows)
        + "<p class='note'>Seconds of work per stage in the refine runs, summed over calls "
        "(critiques in flight together each count in full):</p>" + _table(stage, ("stage", "seconds"))
    )


def _thumb(folder: BenchFolder, relative: str | None) -> str:
    if not relative:
        return ""
    try:
        with Image.open(folder.resolve(relative)) as img:
            img.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            buf = io.BytesIO()
            img.convert("RGB").save(buf, format="PNG")
    except (OSError, GCRError) as exc:
        logger.warning("gallery: cannot read %s: %s", relative, exc)
        return "<p class='fail'>image missing</p>"
    return f"<img src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}' alt=''>"


def _card(
    folder: BenchFolder, record: Mapping[str, Any], baseline: Mapping[str, Any] | None, show: str
) -> str:
    esc = html.escape
    figures = [
        (record.get("initial_image"), f"round 0: {record['initial_reward']:.3f}"),
        (record.get("best_image"), f"final (round {record['best_round']}): {record['final_reward']:.3f}"),
    ]
    if show == "baseline" and baseline:
        figures.append(
            (baseline.get("best_image"), f"best of {baseline['generations']}: {baseline['best_reward']:.3f}")
        )
    cells = "".join(
        f"<figure>{_thumb(folder, p)}<figcaption>{esc(c)}</figcaption></figure>" for p, c in figures
    )
    category = esc(str(record.get("category") or ""))
    return (
        f"<div class='card'><b>{esc(record['id'])}</b> <span class='note'>{category}"
        f" · {record['rounds']} round(s), {esc(str(record['stop_reason']))}</span>"
        f"<p class='prompt'>{esc(record['prompt'])}</p><div class='pair'>{cells}</div>"
        f"<p class='note'>final prompt: {esc(str(record.get('best_prompt')))}</p></div>"
    )


def _gallery_html(
    folder: BenchFolder,
    gallery: Mapping[str, list[str]],
    records: Mapping[str, Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Any]],
) -> str:
    sections = [
        ("gains", "Biggest gains (final - initial)", "refine"),
        ("losses", "Biggest losses (last round below round 0; the kept image is round 0's)", "refine"),
        ("beats_baseline", "Refinement ahead of best-of-n", "baseline"),
        ("behind_baseline", "Refinement behind best-of-n", "baseline"),
    ]
    out = ["<h2>Gallery</h2>"]
    for key, title, show in sections:
        ids = gallery.get(key)
        if ids is None:
            continue
        out.append(f"<h3>{html.escape(title)}</h3>")
        if not ids:
            out.append("<p class='note'>none</p>")
            continue
        cards = [_card(folder, records[i], baselines.get(i), show) for i in ids if i in records]
        out.append("<div class='cards'>" + "".join(cards) + "</div>")
    return "\n".join(out)
