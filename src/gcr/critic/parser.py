"""Read a critic's answer text into a :class:`Critique` or :class:`PairwiseCritique`.

Parsing runs in two steps: :mod:`gcr.critic.sections` finds the structure
(sections, dimension headings, fields), then this module reads each field:
scores (``3.5``, ``3.5/4``, ``3 out of 4``, ``Score: 3 (minor issues)``, N/A),
winners (``Image A``, ``B``, ``Tie``, ``Both equal``, N/A), justifications and
the refined request (read to the end of its section, so multi-line requests
survive).

Anything odd but recoverable becomes a warning on the result: a missing
optional section, a score clamped into [1, 4], N/A where it is not allowed
(treated as missing, never as a number), a dimension that does not belong to the
task, a winner that is missing or disagrees with the scores. An answer that
stops early keeps what was read and is marked ``truncated``. Only when no
dimension score can be read at all does parsing fail, with
:class:`~gcr.errors.CritiqueParseError` carrying the raw text; for a string
input that is the only exception these functions raise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from gcr.critic.schema import (
    NA_PAIRWISE_SCORE,
    SCORE_MAX,
    SCORE_MIN,
    TASK_DIMENSIONS,
    Critique,
    Dimension,
    DimensionJudgement,
    PairwiseCritique,
    PairwiseJudgement,
    Winner,
)
from gcr.critic.sections import DimensionBlock, Layout, Token, ends_in_reasoning
from gcr.errors import CritiqueParseError
from gcr.task import Task

_NA = "N/A"
_NA_RE = re.compile(r"^(?:n\s*/\s*a|n\.a\.?|na|not\s+applicable)(?![a-z])", re.IGNORECASE)
_NUMBER_RE = re.compile(r"(?<![\w.,])[-+]?(?:\d+(?:[.,]\d+)?|\.\d+)")
_WORD_SCORES = {"one": 1.0, "two": 2.0, "three": 3.0, "four": 4.0}
_WORD_RE = re.compile(r"\b(one|two|three|four)\b", re.IGNORECASE)
_SCORE_DECOR = " \t*_`[]()\"'“”<>:=-–—"
_TIE_RE = re.compile(
    r"\b(?:tie|tied|draw|equal(?:ly)?|both|neither|same|even|no\s+(?:clear\s+)?winner)\b", re.IGNORECASE
)
_IMAGE_LETTER_RE = re.compile(
    r"\b(?:image|candidate|output|edit|picture)\s*\(?([AB])\)?(?![\w])", re.IGNORECASE
)
_BARE_LETTER_RE = re.compile(r"^\(?([AB])\)?(?=\s*$|\s*[.,;:!(—–-]|\s+(?:wins|is\s+better)\b)", re.IGNORECASE)
_PAIR_SCORE_RE = re.compile(
    r"\b(?:(?:image|candidate)\s*)?([AB])\b[*_)\s]*[:=][*_\s]*(n\s*/\s*a|[-+]?\d+(?:\.\d+)?)", re.IGNORECASE
)
_MID_SENTENCE_RE = re.compile(r"[A-Za-z,;:(\-]$")


@dataclass(frozen=True)
class _Score:
    """A score as read: a number, N/A, or nothing readable (value None, na False)."""

    value: float | None = None
    na: bool = False

    @property
    def readable(self) -> bool:
        return self.value is not None or self.na


def _pick(tokens: list[Token]) -> Token | None:
    """The first marked token (``##``, bold, numbered, bullet), else the first one."""
    return next((t for t in tokens if t.marked), tokens[0] if tokens else None)


def _first_line(text: str) -> str:
    return next((ln for ln in text.split("\n") if ln.strip(_SCORE_DECOR)), "").strip(_SCORE_DECOR)


def _read_score(text: str) -> _Score:
    """The score on the first non-empty line: N/A, the first number, or a number word."""
    first = _first_line(text)
    if not first:
        return _Score()
    if _NA_RE.match(first):
        return _Score(na=True)
    m = _NUMBER_RE.search(first)
    if m:
        return _Score(float(m.group().replace(",", ".")))
    w = _WORD_RE.search(first)
    return _Score(_WORD_SCORES[w.group(1).lower()]) if w else _Score()


def _read_winner(text: str) -> str | None:
    """'A', 'B', 'tie', 'N/A', or None when unreadable; the earliest clue on the first line wins."""
    first = _first_line(text)
    if not first:
        return None
    if _NA_RE.match(first):
        return _NA
    hits: list[tuple[int, str]] = []
    for regex in (_IMAGE_LETTER_RE, _BARE_LETTER_RE):
        m = regex.search(first)
        if m:
            hits.append((m.start(), m.group(1).upper()))
    m = _TIE_RE.search(first)
    if m:
        hits.append((m.start(), "tie"))
    return min(hits)[1] if hits else None


class _Reader:
    """One parse: the answer's layout plus the warnings collected while reading it."""

    def __init__(self, text: str, task: Task) -> None:
        self.task = task
        self.lay = Layout(text)
        self.warnings: list[str] = []

    def field(self, block: DimensionBlock, key: str, warn: bool = True) -> str | None:
        """The text of the first ``key`` field in ``block`` (a marked heading beats a plain line)."""
        tok = _pick(block.fields.get(key, []))
        if tok is None:
            return None
        if warn and len(block.fields[key]) > 1:
            which = "the first" if tok is block.fields[key][0] else "the first heading-style one"
            self.warnings.append(f"{block.key}: {len(block.fields[key])} '{key}' lines; used {which}")
        return self.lay.body(tok)

    def settle(self, score: _Score, dim: Dimension, where: str) -> tuple[bool, float | None]:
        """(usable, value); a usable None is N/A. Clamps into [1, 4] and reports N/A where not allowed."""
        if score.na:
            if dim.allows_na:
                return True, None
            self.warnings.append(f"{where}: N/A is not allowed for this dimension; treated as missing")
            return False, None
        if score.value is None:
            return False, None
        value = score.value
        if not SCORE_MIN <= value <= SCORE_MAX:
            clamped = min(max(value, SCORE_MIN), SCORE_MAX)
            self.warnings.append(f"{where}: score {value:g} is outside [1, 4]; clamped to {clamped:g}")
            value = clamped
        return True, value

    def blocks(self, usable: Callable[[DimensionBlock], bool]) -> dict[Dimension, DimensionBlock]:
        """One block per task dimension: the first usable one. Repeats and foreign dimensions are reported."""
        allowed = TASK_DIMENSIONS[self.task]
        chosen: dict[Dimension, DimensionBlock] = {}
        repeats: dict[Dimension, int] = {}
        foreign: set[Dimension] = set()
        for block in self.lay.dimension_blocks():
            dim = Dimension(block.key)
            if dim not in allowed:
                foreign.add(dim)
            elif dim not in chosen:
                chosen[dim] = block
            else:
                repeats[dim] = repeats.get(dim, 1) + 1
                if not usable(chosen[dim]) and usable(block):
                    chosen[dim] = block
        for dim in sorted(foreign, key=list(Dimension).index):
            self.warnings.append(f"'{dim.header}' is not judged for {self.task.value} tasks; ignored")
        for dim, count in repeats.items():
            self.warnings.append(f"{dim.value}: judged {count} times; kept the first usable judgement")
        for dim in allowed:
            if dim not in chosen:
                self.warnings.append(f"{dim.value}: no judgement found")
        return chosen

    def justification(self, block: DimensionBlock, score_keys: tuple[str, ...], inline_score: bool) -> str:
        """The Justification field, else the loose text of the dimension (minus a score on its heading)."""
        text = self.field(block, "justification")
        if text is not None:
            return text
        head = self.lay.body(block.heading)
        loose = ["\n".join(head.split("\n")[1:]) if inline_score else head]
        for key in score_keys:  # text written under a score line, when no justification header exists
            for tok in block.fields.get(key, [])[:1]:
                loose.append("\n".join(self.lay.body(tok).split("\n")[1:]))
        return "\n".join(p for p in loose if p.strip()).strip()

    def section(self, key: str, required: bool = True) -> str | None:
        tok = self.lay.first("section", key)
        if tok is None:
            if required:
                self.warnings.append(f"missing section '{_SECTION_TITLES[key]}'")
            return None
        return self.lay.body(tok)

    def analysis(self) -> str | None:
        if self.lay.first("section", "analysis") is None and self.lay.preamble():
            self.warnings.append("no 'User Request Analysis' header; took the text before the judgement")
            return self.lay.preamble()
        return self.section("analysis")

    def truncated(self, chosen: dict[Dimension, DimensionBlock], incomplete_last: bool) -> bool:
        """Whether the answer stops inside or before the end of the judgement."""
        order = TASK_DIMENSIONS[self.task]
        last_heading = max((b.heading.line for b in chosen.values()), default=-1)
        closed = any(
            t.kind == "section" and t.key in ("summary", "refinement") and t.line > last_heading
            for t in self.lay.tokens
        )
        reasons: list[str] = []
        if chosen and not closed:
            last = max(order.index(d) for d in chosen)
            if order[last + 1 :]:
                reasons.append("missing " + ", ".join(d.value for d in order[last + 1 :]))
            if incomplete_last:
                reasons.append(f"the last dimension ({order[last].value}) is incomplete")
        final: Token | None = self.lay.tokens[-1] if self.lay.tokens else None
        if final is not None:
            body = self.lay.body(final)
            if final.kind == "field" and final.key in ("justification", "comments"):
                if not body or _MID_SENTENCE_RE.search(body):
                    reasons.append("it ends mid-sentence")
            elif final.key in ("refined", "refinement") and not body:
                reasons.append("the refinement is empty")
        if reasons:
            self.warnings.append("answer looks truncated: " + "; ".join(reasons))
        return bool(reasons)


_SECTION_TITLES = {
    "analysis": "User Request Analysis",
    "summary": "Summary",
    "refinement": "User Request Refinement",
}


def _hint(text: str) -> str:
    if ends_in_reasoning(text):
        return "; the answer ended inside its <think> block (allow more tokens)"
    return ""


def _last_block(chosen: dict[Dimension, DimensionBlock]) -> DimensionBlock | None:
    return max(chosen.values(), key=lambda b: b.heading.line, default=None)


def _clean_request(text: str | None) -> str | None:
    """Strip emphasis and one pair of surrounding quotes; None when nothing is left."""
    if text is None:
        return None
    text = text.strip().strip("*_").strip()
    for left, right in (('"', '"'), ("“", "”"), ("'", "'"), ("`", "`")):
        if len(text) >= 2 and text.startswith(left) and text.endswith(right):
            text = text[len(left) : -len(right)].strip()
    return text or None


def parse_critique(text: str, task: Task | str) -> Critique:
    """Parse a pointwise critique; raise :class:`CritiqueParseError` if no score is readable."""
    r = _Reader(text, Task.parse(task))

    def score_of(block: DimensionBlock) -> _Score:
        tok = _pick(block.fields.get("score", []))
        # Without a Score line, accept a score on the heading itself: "1. Text Faithfulness: 3.5".
        return _read_score(r.lay.body(tok) if tok is not None else block.heading.inline)

    chosen = r.blocks(lambda b: score_of(b).readable)
    last = _last_block(chosen)
    judgements: list[DimensionJudgement] = []
    incomplete_last = False
    for dim, block in sorted(chosen.items(), key=lambda item: TASK_DIMENSIONS[r.task].index(item[0])):
        if len(block.fields.get("score", [])) > 1:
            r.warnings.append(f"{dim.value}: several score lines; used the first")
        score = score_of(block)
        usable, value = r.settle(score, dim, dim.value)
        if not usable:
            if not score.na:  # an N/A was reported by settle()
                r.warnings.append(f"{dim.value}: no readable score")
            incomplete_last = incomplete_last or block is last
            continue
        justification = r.justification(block, ("score",), inline_score="score" not in block.fields)
        judgements.append(DimensionJudgement(dimension=dim, score=value, justification=justification))
    if not any(j.score is not None for j in judgements):
        hint = (
            "; it looks like a pairwise answer (Score A / Score B)" if r.lay.has("field", "score_a") else ""
        )
        raise CritiqueParseError(
            f"no dimension score could be read from the critique{hint or _hint(text)}", text
        )

    truncated = r.truncated(chosen, incomplete_last)
    analysis = r.analysis()
    summary = r.section("summary")
    comments_tok = r.lay.first("field", "comments")
    refined_tok = r.lay.first("field", "refined")
    refined = _clean_request(r.lay.body(refined_tok)) if refined_tok is not None else None
    if r.section("refinement", required=False) is None and refined_tok is None:
        r.warnings.append(f"missing section '{_SECTION_TITLES['refinement']}'")
    elif refined is None:
        r.warnings.append("no refined request")
    return Critique(
        task=r.task,
        judgements=judgements,
        request_analysis=analysis,
        summary=summary,
        refinement_comments=r.lay.body(comments_tok) if comments_tok is not None else None,
        refined_request=refined,
        raw_text=text,
        warnings=r.warnings,
        truncated=truncated,
    )


def _pair_scores(r: _Reader, block: DimensionBlock, warn: bool = True) -> tuple[_Score, _Score]:
    a_text = r.field(block, "score_a", warn)
    b_text = r.field(block, "score_b", warn)
    a = _read_score(a_text) if a_text is not None else _Score()
    b = _read_score(b_text) if b_text is not None else _Score()
    plain = _pick(block.fields.get("score", []))
    if plain is not None and a_text is None and b_text is None:  # "Score: A=3.5, B=2" or a list below
        head = "\n".join(r.lay.body(plain).split("\n")[:4])
        for letter, value in _PAIR_SCORE_RE.findall(head):
            if letter.upper() == "A" and not a.readable:
                a = _read_score(value)
            elif letter.upper() == "B" and not b.readable:
                b = _read_score(value)
    return a, b


def _winner_from_scores(a: float | None, b: float | None) -> Winner | None:
    if a is None and b is None:
        return None
    a = NA_PAIRWISE_SCORE if a is None else a
    b = NA_PAIRWISE_SCORE if b is None else b
    return "tie" if a == b else ("A" if a > b else "B")


def _pair_winner(
    r: _Reader, block: DimensionBlock, dim: Dimension, score_a: float | None, score_b: float | None
) -> Winner | None:
    derived = _winner_from_scores(score_a, score_b)
    text = r.field(block, "winner")
    stated = _read_winner(text) if text is not None else None
    if stated == _NA:
        if derived is not None:
            r.warnings.append(f"{dim.value}: winner N/A despite scores; derived '{derived}' from the scores")
        return derived
    if stated is None:
        what = "no winner line" if text is None else f"unreadable winner {text[:40]!r}"
        r.warnings.append(f"{dim.value}: {what}; derived '{derived}' from the scores")
        return derived
    if derived is not None and stated != derived:
        shown = ", ".join(
            f"{s} {'N/A' if v is None else f'{v:g}'}" for s, v in (("A", score_a), ("B", score_b))
        )
        r.warnings.append(
            f"{dim.value}: stated winner '{stated}' contradicts the scores ({shown}); kept the stated winner"
        )
    return stated  # type: ignore[return-value]


def parse_pairwise(text: str, task: Task | str) -> PairwiseCritique:
    """Parse a pairwise comparison; raise :class:`CritiqueParseError` if no score is readable."""
    r = _Reader(text, Task.parse(task))

    def complete(block: DimensionBlock) -> bool:
        a, b = _pair_scores(r, block, warn=False)
        return a.readable and b.readable

    chosen = r.blocks(complete)
    last = _last_block(chosen)
    judgements: list[PairwiseJudgement] = []
    incomplete_last = False
    for dim, block in sorted(chosen.items(), key=lambda item: TASK_DIMENSIONS[r.task].index(item[0])):
        a, b = _pair_scores(r, block)
        ok_a, score_a = r.settle(a, dim, f"{dim.value} (A)")
        ok_b, score_b = r.settle(b, dim, f"{dim.value} (B)")
        if not (ok_a and ok_b):
            missing = " and ".join(s for s, ok in (("A", ok_a), ("B", ok_b)) if not ok)
            r.warnings.append(f"{dim.value}: no readable score for {missing}; left out of the comparison")
            incomplete_last = incomplete_last or block is last
            continue
        if block is last and "winner" not in block.fields and r.lay.tokens[-1].kind == "field":
            incomplete_last = incomplete_last or r.lay.tokens[-1].key in (
                "score_a",
                "score_b",
                "justification",
            )
        judgements.append(
            PairwiseJudgement(
                dimension=dim,
                score_a=score_a,
                score_b=score_b,
                winner=_pair_winner(r, block, dim, score_a, score_b),
                justification=r.justification(block, ("score_a", "score_b", "score"), inline_score=False),
            )
        )
    if not any(j.score_a is not None or j.score_b is not None for j in judgements):
        hint = ""
        if r.lay.has("field", "score"):
            hint = "; it looks like a pointwise answer (a single Score per dimension)"
        hint = hint or _hint(text)
        raise CritiqueParseError(f"no pair of dimension scores could be read from the comparison{hint}", text)
    truncated = r.truncated(chosen, incomplete_last)
    return PairwiseCritique(
        task=r.task,
        judgements=judgements,
        request_analysis=r.analysis(),
        summary=r.section("summary"),
        raw_text=text,
        warnings=r.warnings,
        truncated=truncated,
    )
