"""How the public preference benchmarks write labels and prompts: one reader for ``gcr eval`` and PARROT.

Both the evaluation layouts (:mod:`gcr.bench.eval.layouts`) and the PARROT
importers (:mod:`gcr.training.parrot.importers`) read labels through these
functions, so a row means the same preference wherever it is read. A value that
names no preference raises :class:`UnreadableLabel` (the evaluation counts the
pair as ``unknown``, the importer skips the row); it is never read as a tie.

Sources (public layouts, checked against the projects' own code):

* GenAI-Bench ``vote_type``: the four GenAI-Arena votes. TIGER-AI-Lab/GenAI-Bench
  ``inference.py`` (``parse_response``) scores a predicted tie as correct for
  both ``tievote`` and ``bothbad_vote``, so both read as a tie here.
* MMRB2 ``chosen`` is ``"A"``/``"B"`` (facebookresearch/MMRB2
  ``benchmark/build_from_hf.py`` upper-cases it; the t2i file has no ties).
* MMRB2 prompt text marks where each prompt image stands with ``<image_N>``;
  ``build_from_hf.py`` (``extract_images_and_text``) splits the text on
  ``<image_(\\d+)>`` and keeps the stripped text parts. The release JSON it writes
  is ``{"pairs": [{"id", "prompt_content": [["text"|"image", value], ...],
  "response_a": {"model_name", "response_content"}, "response_b": ..., "chosen",
  "prompt_source", "prompt_metadata": {"category", ...}}]}``.
* EditReward-Bench ``ranking`` (``"A>B"``, ``"B>A"``, ``"A=B"``; in the 3- and
  4-candidate subsets over the letters of ``comparison_type``, e.g. ``"AvsC"``
  with ``"C>A"``: ``candidate_1`` is the first letter). A repackaged evaluation
  file may carry no ranking, only ``instruction_following_1/2`` and
  ``visual_quality_1/2``; their per-candidate sums decide then (docs/eval.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

Preference = Literal["A", "B", "tie"]


class UnreadableLabel(ValueError):
    """A label field that names no preference; the message says what was found."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip()


#: GenAI-Arena votes → preference (see the module docstring for the source).
GENAI_VOTES: dict[str, Preference] = {
    "leftvote": "A",
    "rightvote": "B",
    "tievote": "tie",
    "bothbad_vote": "tie",
}


def vote_label(value: Any) -> Preference:
    """A GenAI-Bench (or EditReward-Data) ``vote_type``; case and surrounding space are ignored."""
    text = _text(value).lower()
    if not text:
        raise UnreadableLabel("field 'vote_type' is missing or empty")
    if text not in GENAI_VOTES:
        raise UnreadableLabel(f"vote {value!r} is not one of {', '.join(GENAI_VOTES)}")
    return GENAI_VOTES[text]


def chosen_label(value: Any) -> Preference:
    """MMRB2 ``chosen``: ``A`` or ``B`` in any case."""
    text = _text(value).upper()
    if not text:
        raise UnreadableLabel("field 'chosen' is missing or empty")
    if text not in ("A", "B"):
        raise UnreadableLabel(f"chosen {value!r} is not A or B")
    return text  # type: ignore[return-value]


_LETTER_RANKING = re.compile(r"^\s*([A-Za-z])\s*(>|<|==|=)\s*([A-Za-z])\s*$")
_COMPARISON = re.compile(r"^\s*([A-Za-z])\s*vs\.?\s*([A-Za-z])\s*$", re.IGNORECASE)
_NUMBER_RANKING = re.compile(r"^([12])([<>=])([12])$")


def _order(first: str, op: str, second: str, left: str) -> Preference:
    if op in ("=", "=="):
        return "tie"
    winner = first if op == ">" else second
    return "A" if winner == left else "B"


def _pair_ranking(value: Any) -> Preference:
    """A ranking of exactly two candidates: ``A>B``, ``1<2``, ``candidate_1 > candidate_2``, ``[2, 1]``..."""
    if isinstance(value, list | tuple) and value:
        first = _text(value[0]).lower().removeprefix("candidate_")
        if first in ("1", "2"):
            return "A" if first == "1" else "B"
    text = _text(value).lower()
    if text in ("tie", "=", "1=2", "2=1"):
        return "tie"
    compact = re.sub(r"candidate[_ ]?|image[_ ]?|\s+", "", text).replace("a", "1").replace("b", "2")
    compact = compact.replace("==", "=")
    if compact in ("1", "2"):
        return "A" if compact == "1" else "B"
    match = _NUMBER_RANKING.match(compact)
    if match is None or match.group(1) == match.group(3):
        raise UnreadableLabel(
            f"cannot read ranking {value!r}; expected e.g. 'A>B', 'B>A', 'A=B', '2>1' or [2, 1]"
        )
    return _order(match.group(1), match.group(2), match.group(3), "1")


def ranking_label(value: Any, comparison_type: Any = None) -> Preference:
    """An EditReward-Bench ``ranking`` of ``candidate_1`` against ``candidate_2``.

    With a ``comparison_type`` (``"AvsC"``) the ranking must order exactly those
    two letters; without one, ``A``/``B`` (or ``1``/``2``) name the candidates.
    """
    if not _text(value):
        raise UnreadableLabel("field 'ranking' is missing or empty")
    comparison = _text(comparison_type)
    if not comparison:
        return _pair_ranking(value)
    cmp_match = _COMPARISON.match(comparison)
    if cmp_match is None:
        raise UnreadableLabel(f"comparison_type {comparison_type!r} is not of the form 'AvsC'")
    left, right = cmp_match.group(1).upper(), cmp_match.group(2).upper()
    match = _LETTER_RANKING.match(_text(value))
    if match is None or {match.group(1).upper(), match.group(3).upper()} != {left, right}:
        raise UnreadableLabel(f"ranking {value!r} does not order the two candidates of {comparison_type!r}")
    return _order(match.group(1).upper(), match.group(2), match.group(3).upper(), left)


#: The per-candidate score columns of EditReward-Bench's repackaged evaluation files.
EDITREWARD_SCORE_FIELDS: tuple[str, ...] = (
    "instruction_following_1",
    "visual_quality_1",
    "instruction_following_2",
    "visual_quality_2",
)


def score_sum_label(row: Mapping[str, Any]) -> Preference:
    """The candidate with the larger ``instruction_following_N + visual_quality_N`` (equal sums: a tie)."""
    values = [row.get(name) for name in EDITREWARD_SCORE_FIELDS]
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise UnreadableLabel("field 'ranking' is missing and the per-candidate scores are incomplete")
    one, two = values[0] + values[1], values[2] + values[3]  # type: ignore[operator]
    return "tie" if one == two else ("A" if one > two else "B")


def editreward_label(row: Mapping[str, Any]) -> Preference:
    """EditReward-Bench: the ``ranking`` when the row has one, else the per-candidate score sums."""
    if _text(row.get("ranking")):
        return ranking_label(row["ranking"], row.get("comparison_type"))
    return score_sum_label(row)


_IMAGE_PLACEHOLDER = re.compile(r"<image_\d+>")


def mmrb2_prompt(text: str) -> str:
    """MMRB2 prompt text without its ``<image_N>`` placeholders (text parts joined by newlines)."""
    parts = (part.strip() for part in _IMAGE_PLACEHOLDER.split(text))
    return "\n".join(part for part in parts if part)


def flatten_mmrb2_release(pair: Mapping[str, Any]) -> dict[str, Any]:
    """One pair of the MMRB2 release JSON as a row of the flat (Hugging Face) MMRB2 layout."""

    def parts(content: Any, kind: str) -> list[Any]:
        if not isinstance(content, list):
            return []
        return [p[1] for p in content if isinstance(p, list | tuple) and len(p) == 2 and p[0] == kind]

    def response(side: str) -> Mapping[str, Any]:
        value = pair.get(side)
        return value if isinstance(value, Mapping) else {}

    metadata = pair.get("prompt_metadata")
    return {
        "id": pair.get("id", pair.get("pair_id")),
        "prompt_text": "\n".join(str(t) for t in parts(pair.get("prompt_content"), "text")),
        "prompt_images": parts(pair.get("prompt_content"), "image"),
        "response_a_images": parts(response("response_a").get("response_content"), "image"),
        "response_b_images": parts(response("response_b").get("response_content"), "image"),
        "response_a_model": response("response_a").get("model_name"),
        "response_b_model": response("response_b").get("model_name"),
        "chosen": pair.get("chosen", pair.get("human_preference")),
        "category": metadata.get("category") if isinstance(metadata, Mapping) else None,
        "prompt_source": pair.get("prompt_source"),
    }


def mmrb2_release_rows(data: Any) -> list[dict[str, Any]] | None:
    """The flattened rows of a parsed MMRB2 release file (``{"pairs": [...]}``); None for anything else."""
    if isinstance(data, dict) and isinstance(data.get("pairs"), list):
        return [flatten_mmrb2_release(p) for p in data["pairs"] if isinstance(p, Mapping)]
    return None
