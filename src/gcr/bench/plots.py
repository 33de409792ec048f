"""The benchmark report's plots, drawn with matplotlib (headless) from ``summary.json`` figures.

Each plot is returned as PNG bytes, for embedding in the self-contained HTML report.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from gcr.errors import DependencyError


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise DependencyError("matplotlib", "report", "The benchmark report's plots") from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def _error(figure: Mapping[str, Any]) -> tuple[float, float]:
    if figure.get("ci_low") is None:
        return 0.0, 0.0
    return figure["mean"] - figure["ci_low"], figure["ci_high"] - figure["mean"]


def reward_plot(summary: Mapping[str, Any]) -> bytes:
    """Mean reward at round 0, final and (if run) best-of-n, with 95% intervals; and the curve over rounds."""
    plt = _pyplot()
    reward = summary["reward"]
    bars = [("round 0", reward["initial"]), ("final", reward["final"])]
    if summary.get("baseline"):
        bars.append(("best-of-n", summary["baseline"]["baseline"]))
    bars = [(name, fig) for name, fig in bars if fig.get("mean") is not None]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    if bars:
        errors = list(zip(*(_error(f) for _, f in bars), strict=True))
        left.bar(
            [n for n, _ in bars],
            [f["mean"] for _, f in bars],
            yerr=errors,
            capsize=6,
            color=["#999", "#2a7", "#47c"][: len(bars)],
        )
    left.set_ylim(0, 1)
    left.set_ylabel("mean normalized reward")
    left.set_title("reward (95% CI)")
    curve = summary["rounds"]["best_so_far_by_round"]
    right.plot(range(len(curve)), curve, marker="o", color="#2a7")
    right.set_xlabel("round")
    right.set_ylabel("mean best-so-far reward")
    right.set_title("reward over rounds")
    right.set_xticks(range(len(curve)))
    return _png(fig)


def dimension_plot(summary: Mapping[str, Any]) -> bytes | None:
    dims = {k: d for k, d in summary["dimensions"].items() if d["delta"]["mean"] is not None}
    if not dims:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    names = list(dims)
    errors = list(zip(*(_error(d["delta"]) for d in dims.values()), strict=True))
    ax.bar(names, [d["delta"]["mean"] for d in dims.values()], yerr=errors, capsize=6, color="#47c")
    ax.axhline(0, color="#444", linewidth=0.8)
    ax.set_ylabel("score change (final - round 0)")
    ax.set_title("per-dimension change (95% CI)")
    ax.tick_params(axis="x", labelrotation=15)
    return _png(fig)


def rounds_plot(summary: Mapping[str, Any]) -> bytes | None:
    rounds = summary["rounds"]
    if not rounds["histogram"]:
        return None
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    from matplotlib.ticker import MaxNLocator

    left.bar(list(rounds["histogram"]), list(rounds["histogram"].values()), color="#999")
    left.set_xlabel("rounds used")
    left.set_ylabel("prompts")
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    reasons = rounds["stop_reasons"]
    right.barh(list(reasons), list(reasons.values()), color="#c84")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlabel("prompts")
    right.set_title("why runs stopped")
    return _png(fig)


def time_plot(summary: Mapping[str, Any]) -> bytes | None:
    t = summary["throughput"]
    if not t["wall_s"]:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 2.6))
    labels = ["wall", "generator busy", "critic busy", "both busy"]
    values = [t["wall_s"], t["generator_busy_s"], t["critic_busy_s"], t["overlap_s"]]
    ax.barh(labels, values, color=["#444", "#2a7", "#47c", "#c84"])
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title("time by stage")
    return _png(fig)


def render_plots(summary: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """Every plot that has data, as ``(name, PNG bytes)``."""
    plots = [
        ("reward", reward_plot(summary) if summary["counts"]["finished"] else None),
        ("dimensions", dimension_plot(summary)),
        ("rounds", rounds_plot(summary)),
        ("time", time_plot(summary)),
    ]
    return [(name, png) for name, png in plots if png is not None]
