"""Read a critic's answer text into a :class:`Critique` or :class:`PairwiseCritique`.

Parsing runs in two steps: :mod:`gcr.critic.sections` finds the structure
(sections, dimension headings, fields), then this module reads each field:
scores (``3.5``, ``3.5/4``, ``3 out of 4``, ``Score: 3 (minor issues)``, N/A),
winners, justifications and the refined request (read to the end of its
section, so multi-line requests survive).

Anything odd but recoverable becomes a warning on the result: a missing
optional section, a score clamped into [1, 4], N/A where it is not allowed
(treated as missing, never as a number), a dimension that does not belong to the
task, a winner that disagrees with the scores. An answer that stops early keeps
what was read and is marked ``truncated``. Only when no dimension score can be
read at all does parsing fail, with :class:`~gcr.errors.CritiqueParseError`
carrying the raw text; that is the only exception these functions raise for a
string input.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

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
    Task,
    Winner,
)
from gcr.critic.sections import Token, normalize_text, token_body, tokenize
from gcr.errors import CritiqueParseError

logger = logging.getLogger(__name__)

_NA = "N/A"
_NA_RE = re.compile(r"^(?:n\s*/\s*a|n\.a\.?|na|not\s+applicable)(?![a-z])", re.IGNORECASE)
_NUMBER_RE = re.compile(r"(?<![\w.])[-+]?(?:\d+(?:\.\d+)?|\.\d+)")
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
_PAIR_SCORE_RE = re.compile(r"\b([AB])\s*[:=]\s*(n\s*/\s*a|[-+]?\d+(?:\.\d+)?)", re.IGNORECASE)
_MID_SENTENCE_RE = re.compile(r"[A-Za-z,;:(\-]$")


@dataclass
class _Score:
    """A score field as read: a number, N/A, or nothing readable (value None, na False)."""

    value: float | None = None
    na: bool = False


@dataclass
class _Layout:
    """The tokens of one answer, grouped by section and dimension."""

    text: str
    lines: list[str]
    tokens: list[Token]
    warnings: list[str] = field(default_factory=list)

    def body(self, tok: Token) -> str:
        index = next(i for i, t in enumerate(self.tokens) if t is tok)
        return token_body(self.lines, self.tokens, index)


def _layout(text: str) -> _Layout:
    lines, tokens = tokenize(normalize_text(text))
    return _Layout(text, lines, _in_judgement_zone(tokens))


def _in_judgement_zone(tokens: list[Token]) -> list[Token]:
    """Drop dimension and score-like tokens that sit outside the judgement (e.g. in the summary)."""
    has_judgement = any(t.kind == "section" and t.key == "judgement" for t in tokens)
    open_zone = not has_judgement
    kept: list[Token] = []
    for tok in tokens:
        if tok.kind == "section":
            if tok.key == "judgement":
                open_zone = True
            elif tok.key in ("summary", "refinement") or (has_judgement and tok.key == "analysis"):
                open_zone = False
        elif not open_zone and (
            tok.kind == "dimension" or (tok.kind == "field" and tok.key not in ("comments", "refined"))
        ):
            continue
        kept.append(tok)
    return kept


def _read_score(text: str) -> _Score:
    first = next((ln for ln in text.split("\n") if ln.strip(_SCORE_DECOR)), "")
    first = first.strip(_SCORE_DECOR)
    if not first:
        return _Score()
    if _NA_RE.match(first):
        return _Score(na=True)
    m = _NUMBER_RE.search(first)
    if m:
        return _Score(float(m.group()))
    w = _WORD_RE.search(first)
    return _Score(_WORD_SCORES[w.group(1).lower()]) if w else _Score()


def _clamp(value: float, where: str, warnings: list[str]) -> float:
    if SCORE_MIN <= value <= SCORE_MAX:
        return value
    clamped = min(max(value, SCORE_MIN), SCORE_MAX)
    warnings.append(f"{where}: score {value:g} is outside [1, 4]; clamped to {clamped:g}")
    return clamped


def _settle(score: _Score, dim: Dimension, where: str, warnings: list[str]) -> tuple[bool, float | None]:
    """(usable, value): value None with usable True means N/A."""
    if score.na:
        if dim.allows_na:
            return True, None
        warnings.append(f"{where}: N/A is not allowed for this dimension; treated as missing")
        return False, None
    if score.value is None:
        return False, None
    return True, _clamp(score.value, where, warnings)


@dataclass
class _DimBlock:
    dim: Dimension
    tokens: list[Token]
    fields: dict[str, list[Token]]


def _dimension_blocks(lay: _Layout, task: Task) -> list[_DimBlock]:
    blocks: list[_DimBlock] = []
    current: _DimBlock | None = None
    for tok in lay.tokens:
        if tok.kind == "dimension":
            dim = Dimension(tok.key)
            current = _DimBlock(dim, [tok], {})
            if dim not in TASK_DIMENSIONS[task]:
                lay.warnings.append(f"'{dim.header}' is not judged for {task.value} tasks; ignored")
                current = None
                continue
            blocks.append(current)
        elif tok.kind == "section":
            current = None
        elif tok.kind == "field" and current is not None:
            current.fields.setdefault(tok.key, []).append(tok)
    return blocks


def _field_text(lay: _Layout, block: _DimBlock, key: str, warn: bool = True) -> str | None:
    toks = block.fields.get(key)
    if not toks:
        return None
    if warn and len(toks) > 1:
        lay.warnings.append(f"{block.dim.value}: {len(toks)} '{key}' lines; used the first")
    return lay.body(toks[0])


def _justification(
    lay: _Layout, block: _DimBlock, score_keys: tuple[str, ...], inline_score: bool = False
) -> str:
    """The Justification field, else the loose text of the dimension (minus any score on its heading)."""
    text = _field_text(lay, block, "justification")
    if text is not None:
        return text
    head = lay.body(block.tokens[0])
    loose = ["\n".join(head.split("\n")[1:]) if inline_score else head]
    for key in score_keys:  # text written under a score line, when no justification header exists
        for tok in block.fields.get(key, [])[:1]:
            loose.append("\n".join(lay.body(tok).split("\n")[1:]))
    return "\n".join(p for p in loose if p.strip()).strip()


def _unique(lay: _Layout, blocks: list[_DimBlock], usable) -> dict[Dimension, _DimBlock]:
    """One block per dimension: the first usable one, warning about repeats."""
    chosen: dict[Dimension, _DimBlock] = {}
    for block in blocks:
        if block.dim not in chosen or (not usable(chosen[block.dim]) and usable(block)):
            chosen[block.dim] = block
        else:
            lay.warnings.append(f"{block.dim.value}: judged more than once; kept the first usable judgement")
    return chosen


def _section(lay: _Layout, key: str) -> str | None:
    tok = next((t for t in lay.tokens if t.kind == "section" and t.key == key), None)
    return None if tok is None else lay.body(tok)


def _analysis(lay: _Layout) -> str | None:
    text = _section(lay, "analysis")
    if text is not None:
        return text
    first = lay.tokens[0].line if lay.tokens else len(lay.lines)
    preamble = "\n".join(lay.lines[:first]).strip()
    if preamble:
        lay.warnings.append(
            "no 'User Request Analysis' header; took the text before the judgement as analysis"
        )
        return preamble
    lay.warnings.append("missing section 'User Request Analysis'")
    return None


def _summary(lay: _Layout) -> str | None:
    text = _section(lay, "summary")
    if text is None:
        lay.warnings.append("missing section 'Summary'")
    return text


def _first_field(lay: _Layout, key: str) -> tuple[Token | None, str | None]:
    tok = next((t for t in lay.tokens if t.kind == "field" and t.key == key), None)
    return tok, (None if tok is None else lay.body(tok))


def _clean_request(text: str) -> str:
    text = text.strip().strip("*_").strip()
    pairs = (('"', '"'), ("“", "”"), ("'", "'"), ("`", "`"))
    for left, right in pairs:
        if len(text) >= 2 and text.startswith(left) and text.endswith(right):
            text = text[len(left) : -len(right)].strip()
    return text


def _check_truncation(lay: _Layout, task: Task, found: list[Dimension], incomplete_last: bool) -> bool:
    """Mark the answer truncated when it stops inside or before the judgement is complete."""
    order = TASK_DIMENSIONS[task]
    last_dim_line = max((t.line for t in lay.tokens if t.kind == "dimension"), default=-1)
    after_judgement = any(
        t.kind == "section" and t.key in ("summary", "refinement") and t.line > last_dim_line
        for t in lay.tokens
    )
    reasons: list[str] = []
    if found and not after_judgement:
        last = max(order.index(d) for d in found)
        missing_tail = [d.value for d in order[last + 1 :]]
        if missing_tail:
            reasons.append("missing " + ", ".join(missing_tail))
        if incomplete_last:
            reasons.append(f"the last dimension ({order[last].value}) is incomplete")
    final = lay.tokens[-1] if lay.tokens else None
    final_body = lay.body(final) if final is not None else ""
    if final is not None and final.kind == "field" and final.key in ("justification", "comments"):
        if not final_body or _MID_SENTENCE_RE.search(final_body):
            reasons.append("it ends mid-sentence")
    elif final is not None and final.key in ("refined", "refinement") and not final_body:
        reasons.append("the refinement is empty")
    if reasons:
        lay.warnings.append("answer looks truncated: " + "; ".join(reasons))
    return bool(reasons)


def parse_critique(text: str, task: Task | str) -> Critique:
    """Parse a pointwise critique; raise :class:`CritiqueParseError` if no score is readable."""
    task = Task.parse(task)
    lay = _layout(text)
    blocks = _dimension_blocks(lay, task)

    def score_of(block: _DimBlock) -> _Score:
        toks = block.fields.get("score")
        if toks:
            return _read_score(lay.body(toks[0]))
        return _read_score(block.tokens[0].inline)  # "Text Faithfulness: 3.5"

    chosen = _unique(lay, blocks, lambda b: score_of(b).value is not None or score_of(b).na)
    judgements: list[DimensionJudgement] = []
    incomplete_last = False
    for dim in TASK_DIMENSIONS[task]:
        block = chosen.get(dim)
        if block is None:
            lay.warnings.append(f"{dim.value}: no judgement found")
            continue
        if len(block.fields.get("score", [])) > 1:
            lay.warnings.append(f"{dim.value}: several score lines; used the first")
        usable, value = _settle(score_of(block), dim, dim.value, lay.warnings)
        if not usable:
            if not score_of(block).na:  # an N/A was already reported by _settle
                lay.warnings.append(f"{dim.value}: no readable score")
            incomplete_last = block is max(chosen.values(), key=lambda b: b.tokens[0].line)
            continue
        inline_score = "score" not in block.fields
        judgements.append(
            DimensionJudgement(
                dimension=dim, score=value, justification=_justification(lay, block, ("score",), inline_score)
            )
        )
    if not any(j.score is not None for j in judgements):
        hint = ""
        if any(t.kind == "field" and t.key in ("score_a", "score_b") for t in lay.tokens):
            hint = "; it looks like a pairwise answer (Score A / Score B)"
        raise CritiqueParseError(f"no dimension score could be read from the critique{hint}", text)

    truncated = _check_truncation(lay, task, list(chosen), incomplete_last)
    analysis = _analysis(lay)
    summary = _summary(lay)
    _, comments = _first_field(lay, "comments")
    refined_tok, refined = _first_field(lay, "refined")
    if _section(lay, "refinement") is None and refined_tok is None:
        lay.warnings.append("missing section 'User Request Refinement'")
    elif refined is None or not _clean_request(refined):
        lay.warnings.append("no refined request")
    return Critique(
        task=task,
        judgements=judgements,
        request_analysis=analysis,
        summary=summary,
        refinement_comments=comments,
        refined_request=_clean_request(refined) if refined and _clean_request(refined) else None,
        raw_text=text,
        warnings=lay.warnings,
        truncated=truncated,
    )


def _read_winner(text: str) -> Winner | str | None:
    """'A', 'B', 'tie', N/A, or None when unreadable."""
    first = next((ln for ln in text.split("\n") if ln.strip(_SCORE_DECOR)), "").strip(_SCORE_DECOR)
    if not first:
        return None
    if _NA_RE.match(first):
        return _NA
    hits: list[tuple[int, Winner]] = []
    for regex, value in ((_IMAGE_LETTER_RE, None), (_BARE_LETTER_RE, None), (_TIE_RE, "tie")):
        m = regex.search(first)
        if m:
            hits.append((m.start(), value or m.group(1).upper()))  # type: ignore[arg-type]
    return min(hits)[1] if hits else None


def _winner_from_scores(a: float | None, b: float | None) -> Winner | None:
    if a is None and b is None:
        return None
    a = NA_PAIRWISE_SCORE if a is None else a
    b = NA_PAIRWISE_SCORE if b is None else b
    return "tie" if a == b else ("A" if a > b else "B")


def _pair_scores(lay: _Layout, block: _DimBlock, warn: bool = True) -> tuple[_Score, _Score]:
    a_text = _field_text(lay, block, "score_a", warn)
    b_text = _field_text(lay, block, "score_b", warn)
    a = _read_score(a_text) if a_text is not None else _Score()
    b = _read_score(b_text) if b_text is not None else _Score()
    plain = block.fields.get("score")
    if plain and a_text is None and b_text is None:  # "Score: A=3.5, B=2"
        for letter, value in _PAIR_SCORE_RE.findall(lay.body(plain[0]).split("\n")[0]):
            read = _read_score(value)
            if letter.upper() == "A" and a.value is None and not a.na:
                a = read
            elif letter.upper() == "B" and b.value is None and not b.na:
                b = read
    return a, b


def parse_pairwise(text: str, task: Task | str) -> PairwiseCritique:
    """Parse a pairwise comparison; raise :class:`CritiqueParseError` if no score is readable."""
    task = Task.parse(task)
    lay = _layout(text)
    blocks = _dimension_blocks(lay, task)

    def complete(block: _DimBlock) -> bool:
        a, b = _pair_scores(lay, block, warn=False)
        return (a.value is not None or a.na) and (b.value is not None or b.na)

    chosen = _unique(lay, blocks, complete)
    last_block = max(chosen.values(), key=lambda b: b.tokens[0].line) if chosen else None
    judgements: list[PairwiseJudgement] = []
    incomplete_last = False
    for dim in TASK_DIMENSIONS[task]:
        block = chosen.get(dim)
        if block is None:
            lay.warnings.append(f"{dim.value}: no judgement found")
            continue
        a, b = _pair_scores(lay, block)
        ok_a, score_a = _settle(a, dim, f"{dim.value} (A)", lay.warnings)
        ok_b, score_b = _settle(b, dim, f"{dim.value} (B)", lay.warnings)
        if not (ok_a and ok_b):
            missing = " and ".join(s for s, ok in (("A", ok_a), ("B", ok_b)) if not ok)
            lay.warnings.append(f"{dim.value}: no readable score for {missing}; left out of the comparison")
            incomplete_last = incomplete_last or block is last_block
            continue
        winner = _pair_winner(lay, block, dim, score_a, score_b)
        if (
            block is last_block
            and "winner" not in block.fields
            and lay.tokens[-1] in block.fields.get("score_b", [])
        ):
            incomplete_last = True
        judgements.append(
            PairwiseJudgement(
                dimension=dim,
                score_a=score_a,
                score_b=score_b,
                winner=winner,
                justification=_justification(lay, block, ("score_a", "score_b", "score")),
            )
        )
    if not any(j.score_a is not None or j.score_b is not None for j in judgements):
        hint = ""
        if any(t.kind == "field" and t.key == "score" for t in lay.tokens):
            hint = "; it looks like a pointwise answer (a single Score per dimension)"
        raise CritiqueParseError(f"no pair of dimension scores could be read from the comparison{hint}", text)
    truncated = _check_truncation(lay, task, list(chosen), incomplete_last)
    return PairwiseCritique(
        task=task,
        judgements=judgements,
        request_analysis=_analysis(lay),
        summary=_summary(lay),
        raw_text=text,
        warnings=lay.warnings,
        truncated=truncated,
    )


def _pair_winner(
    lay: _Layout, block: _DimBlock, dim: Dimension, score_a: float | None, score_b: float | None
) -> Winner | None:
    derived = _winner_from_scores(score_a, score_b)
    text = _field_text(lay, block, "winner")
    stated = _read_winner(text) if text is not None else None
    if stated == _NA:
        if score_a is None and score_b is None:
            return None
        lay.warnings.append(f"{dim.value}: winner N/A despite scores; derived '{derived}' from the scores")
        return derived
    if stated is None:
        if text is None:
            lay.warnings.append(f"{dim.value}: no winner line; derived '{derived}' from the scores")
        else:
            lay.warnings.append(
                f"{dim.value}: unreadable winner {text[:40]!r}; derived '{derived}' from the scores"
            )
        return derived
    if derived is not None and stated != derived:
        lay.warnings.append(
            f"{dim.value}: stated winner '{stated}' contradicts the scores "
            f"(A {_fmt(score_a)}, B {_fmt(score_b)}); kept the stated winner"
        )
    return stated  # type: ignore[return-value]


def _fmt(value: float | None) -> str:
    return "N/A" if value is None else f"{value:g}"
