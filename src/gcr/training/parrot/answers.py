"""Write critiques back out in the exact answer layouts the critic is trained to produce.

The SFT targets are rendered from the *parsed* teacher critiques rather than
copied from the teacher's raw text, so every training answer has exactly the
headers, order and score format of docs/critique-format.md, whatever small liberties
the teacher took (bold headers, a preamble, a ``<think>`` block). Both layouts
parse back with :func:`gcr.critic.parser.parse_critique` /
:func:`~gcr.critic.parser.parse_pairwise` to the same scores.
"""

from __future__ import annotations

import re

from gcr.critic.schema import TASK_DIMENSIONS, Critique, PairwiseCritique

_WINNER_TEXT = {"A": "Image A", "B": "Image B", "tie": "Tie"}
# Lines that carry a verdict: scores, winners, an overall preference.
_VERDICT_LINE = re.compile(
    r"^\s*[#*_\s]*(?:score(?:\s*[ab])?|winner|preferred|preference|verdict)\b[^:\n]*:.*$",
    re.IGNORECASE | re.MULTILINE,
)


def format_score(value: float | None) -> str:
    """``3.0``, ``3.5``, ``2.75``; ``N/A`` for None."""
    if value is None:
        return "N/A"
    text = f"{round(value, 2):.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _block(text: str | None) -> str:
    return (text or "").strip()


def format_pairwise(critique: PairwiseCritique) -> str:
    """The pairwise answer: analysis, per dimension justification / Score A / Score B / Winner, summary."""
    lines = ["# User Request Analysis", _block(critique.request_analysis), "# Detailed Judgement"]
    by_dim = {j.dimension: j for j in critique.judgements}
    number = 0
    for dim in TASK_DIMENSIONS[critique.task]:
        j = by_dim.get(dim)
        if j is None:
            continue
        number += 1
        winner = "N/A" if j.winner is None else _WINNER_TEXT[j.winner]
        lines += [
            f"{number}. {dim.header}:",
            f"## Justification: {_block(j.justification)}",
            f"## Score A: {format_score(j.score_a)}",
            f"## Score B: {format_score(j.score_b)}",
            f"## Winner: {winner}",
        ]
    lines.append(f"# Summary: {_block(critique.summary)}")
    return "\n".join(lines) + "\n"


def format_pointwise(critique: Critique) -> str:
    """The pointwise answer, refinement included (docs/critique-format.md)."""
    lines = ["# User Request Analysis", _block(critique.request_analysis), "# Detailed Judgement"]
    by_dim = {j.dimension: j for j in critique.judgements}
    number = 0
    for dim in TASK_DIMENSIONS[critique.task]:
        j = by_dim.get(dim)
        if j is None:
            continue
        number += 1
        lines += [
            f"{number}. {dim.header}:",
            f"## Justification: {_block(j.justification)}",
            f"## Score: {format_score(j.score)}",
        ]
    lines += [
        f"# Summary: {_block(critique.summary)}",
        "# User Request Refinement:",
        f"## Refinement Comments: {_block(critique.refinement_comments)}",
        f"## Refined Request: {_block(critique.refined_request)}",
    ]
    return "\n".join(lines) + "\n"


def strip_verdicts(critique: PairwiseCritique) -> str:
    """The rationale with every score, winner line and the summary removed.

    This is what the consistency predictor reads: the reasoning, not the
    verdict, so it has to re-derive the preference on its own.
    """
    parts: list[str] = []
    if critique.request_analysis:
        parts.append("Request analysis:\n" + _VERDICT_LINE.sub("", critique.request_analysis).strip())
    for j in critique.judgements:
        text = _VERDICT_LINE.sub("", j.justification).strip()
        if text:
            parts.append(f"{j.dimension.header}:\n{text}")
    return "\n\n".join(parts)
