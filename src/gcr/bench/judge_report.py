"""The report's judge sections: gains side by side, agreement, the reward-hacking gallery, vetoes."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from gcr.bench.folder import BenchFolder
from gcr.bench.judge_stats import hacking_gallery
from gcr.bench.report import _ci, _rate, _table, _thumb


def _agree(figure: Mapping[str, Any] | None) -> str:
    if not figure or figure.get("rate") is None:
        return "–"
    return f"{figure['rate']:.1%} [{figure['ci_low']:.1%}, {figure['ci_high']:.1%}] of {figure['n']}"


def judges_html(
    folder: BenchFolder,
    summary: Mapping[str, Any],
    records: Mapping[str, Mapping[str, Any]],
    judgements: Mapping[tuple[str, str], Mapping[str, Any]],
) -> str:
    figures = summary.get("judges")
    parts: list[str] = []
    if figures:
        parts.append(_gains_table(summary, figures))
        parts.append(_hacking_html(folder, figures, records, judgements))
    veto = summary.get("veto")
    if veto:
        parts.append(_veto_html(veto))
    return "\n".join(parts)


def _gains_table(summary: Mapping[str, Any], figures: Mapping[str, Any]) -> str:
    reward = summary["reward"]
    rows: list[tuple[Any, ...]] = [
        (
            f"critic (drove the loop): {summary.get('critic')}",
            reward["delta"]["n"],
            _ci(reward["initial"]),
            _ci(reward["final"]),
            _ci(reward["delta"]),
            _rate(reward["win_rate"]),
            "–",
            "–",
            "–",
        )
    ]
    for j in figures["judges"]:
        rows.append(
            (
                j["spec"],
                j["n"],
                _ci(j["initial"]),
                _ci(j["final"]),
                f"{_ci(j['gain'])} (critic on these: {_ci(j['critic_gain'])})",
                _rate(j["win_rate"]),
                _agree(j["agreement"]),
                j["suspected_reward_hacking"]["count"],
                j["failed"]["count"],
            )
        )
    header = (
        "scorer",
        "prompts",
        "round 0",
        "final",
        "gain [95% CI]",
        "final beats round 0",
        "agrees with critic",
        "suspected hacking",
        "judge failed",
    )
    out = [
        "<h2>Independent judges</h2>",
        "<p class='note'>The critic's own gain is what the loop optimized; a judge that did not drive the "
        "loop re-scores the same round-0 and final images against the user's prompt. Scores are "
        "normalized to [0, 1]. <i>Agrees with critic</i>: prompts where both say the same image is "
        "better (or both tie). <i>Suspected hacking</i>: the critic's reward rose while the judge's "
        "score fell. A judge that failed on an image leaves that prompt out; it is never counted as 0.</p>",
        _table(rows, header),
    ]
    base_rows = [
        (
            j["spec"],
            j["baseline"]["n"],
            _ci(j["baseline"]["gain"]),
            _ci(j["baseline"]["critic_gain"]),
            _rate(j["baseline"]["win_rate"]),
            _agree(j["baseline"]["agreement"]),
        )
        for j in figures["judges"]
        if j.get("baseline")
    ]
    if base_rows:
        out.append("<h3>Against the best-of-n baseline (final − baseline pick)</h3>")
        out.append(
            _table(
                base_rows,
                (
                    "judge",
                    "prompts",
                    "judge gain [95% CI]",
                    "critic gain [95% CI]",
                    "judge: refine ahead",
                    "agrees with critic",
                ),
            )
        )
    return "\n".join(out)


def _hacking_html(
    folder: BenchFolder,
    figures: Mapping[str, Any],
    records: Mapping[str, Mapping[str, Any]],
    judgements: Mapping[tuple[str, str], Mapping[str, Any]],
) -> str:
    esc = html.escape
    total = figures["suspected_reward_hacking"]["count"]
    out = [f"<h3>Suspected reward hacking ({total} prompt(s): critic up, a judge down)</h3>"]
    shown = hacking_gallery(figures)
    if not shown:
        out.append("<p class='note'>none</p>")
        return "\n".join(out)
    specs = {j["judge"]: j["spec"] for j in figures["judges"]}
    cards = []
    for case_id, identity in shown:
        record = records.get(case_id)
        judged = judgements.get((case_id, identity))
        if record is None or judged is None:
            continue
        before = (judged.get("initial") or {}).get("score")
        after = (judged.get("final") or {}).get("score")
        figs = [
            (
                record.get("initial_image"),
                f"round 0 · critic {record['initial_reward']:.3f} · judge {before:.3f}",
            ),
            (record.get("best_image"), f"final · critic {record['final_reward']:.3f} · judge {after:.3f}"),
        ]
        cells = "".join(
            f"<figure>{_thumb(folder, p)}<figcaption>{esc(c)}</figcaption></figure>" for p, c in figs
        )
        cards.append(
            f"<div class='card'><b>{esc(case_id)}</b> <span class='note'>judge: {esc(specs[identity])}</span>"
            f"<p class='prompt'>{esc(str(record['prompt']))}</p><div class='pair'>{cells}</div>"
            f"<p class='note'>final prompt: {esc(str(record.get('best_prompt')))}</p></div>"
        )
    out.append("<div class='cards'>" + "".join(cards) + "</div>")
    return "\n".join(out)


def _veto_html(veto: Mapping[str, Any]) -> str:
    rows = [
        ("veto judge", veto.get("judge")),
        ("checks (a round's best challenged the run's best)", veto["checks"]),
        ("vetoed (the current best was kept)", veto["vetoed"]),
        ("accepted", veto["accepted"]),
        ("judge failed (the critic's choice stood)", veto["failed"]),
        ("prompts with a vetoed round", ", ".join(veto["prompts_vetoed"]) or "none"),
    ]
    return "<h2>Cross-judge veto</h2>" + _table(rows)
