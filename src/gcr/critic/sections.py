"""Tokenize a critic's answer into headings and the text that belongs to each.

The critic answers in a markdown layout (``# Detailed Judgement``, ``1. Text
Faithfulness:``, ``## Score: 3.5`` ...), but real models drift: bold instead of
``#``, other header levels, missing numbers or colons, ``&`` for "and", CRLF,
``<think>`` blocks. This module only finds structure: each line that is a known
label becomes a :class:`Token`, and :func:`token_body` returns the text a token
owns. Reading scores and winners out of that text is :mod:`gcr.critic.parser`'s
job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

TokenKind = Literal["section", "dimension", "field", "other", "rule"]


@dataclass(frozen=True)
class Token:
    """One structural line (or part of a line) of the answer."""

    kind: TokenKind
    #: section: analysis|judgement|summary|refinement; dimension: a Dimension value;
    #: field: justification|score|score_a|score_b|winner|comments|refined; other/rule: "".
    key: str
    #: Markdown header level (1-6), or None for plain and bold lines.
    level: int | None
    #: Text after the label on the same line.
    inline: str
    line: int
    #: True when the line was numbered, a markdown header or bold (a deliberate heading).
    marked: bool = False


def _aliases(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {alias: key for key, names in table.items() for alias in names}


SECTION_ALIASES = _aliases(
    {
        "analysis": ("user request analysis", "request analysis", "analysis of the user request", "analysis"),
        "judgement": (
            "detailed judgement",
            "detailed judgment",
            "judgement",
            "judgment",
            "detailed evaluation",
        ),
        "summary": ("summary", "overall summary", "final summary"),
        "refinement": ("user request refinement", "request refinement", "prompt refinement", "refinement"),
    }
)

DIMENSION_ALIASES = _aliases(
    {
        "text_faithfulness": (
            "text faithfulness",
            "text fidelity",
            "prompt faithfulness",
            "instruction faithfulness",
        ),
        "image_faithfulness": (
            "image faithfulness",
            "image fidelity",
            "source faithfulness",
            "source image faithfulness",
        ),
        "physical_quality": (
            "physical and visual quality",
            "physical visual quality",
            "visual and physical quality",
            "physical quality",
            "visual quality",
        ),
        "text_rendering": ("text rendering", "text render", "rendered text", "text rendering quality"),
    }
)

FIELD_ALIASES = _aliases(
    {
        "justification": ("justification", "reasoning", "rationale", "explanation"),
        "score": ("score", "rating"),
        "score_a": (
            "score a",
            "score image a",
            "score for image a",
            "score for a",
            "image a score",
            "rating a",
        ),
        "score_b": (
            "score b",
            "score image b",
            "score for image b",
            "score for b",
            "image b score",
            "rating b",
        ),
        "winner": ("winner", "better image", "preferred image", "preferred"),
        "comments": ("refinement comments", "refinement comment", "comments"),
        "refined": (
            "refined request",
            "refined prompt",
            "refined instruction",
            "improved request",
            "revised request",
        ),
    }
)

_RULE_RE = re.compile(r"^\s*([-*_])(?:\s*\1){2,}\s*$")
_FENCE_RE = re.compile(r"^\s*(```|~~~)[\w+-]*\s*$")
_HASHES_RE = re.compile(r"^\s*(#{1,6})(?!#)\s*")
_BULLET_RE = re.compile(r"^(?:[-+•·>]\s+|\*\s+(?!\*))")
_NUMBER_RE = re.compile(r"^(?:step\s*)?\(?\d{1,2}\s*[.)](?=[\s*_A-Za-z])\s*", re.IGNORECASE)
_DECOR = " \t*_`"
_LABEL_SEP_RE = re.compile(r"[:=]")
_NON_WORD_RE = re.compile(r"[^a-z0-9]+")
_SCORE_NO_COLON_RE = re.compile(
    r"^(?P<label>(?:score|rating)(?:\s*(?:for\s*)?(?:image\s*)?\(?[ab]\)?(?![a-z]))?)[\s*_]*[-–—]?\s*"
    r"(?=[\d.]|n\s*/\s*a\b|na\b)",
    re.IGNORECASE,
)
# Further pairwise fields written on the same line, e.g. "Score A: 3 | Score B: 2.5".
_INLINE_FIELD_RE = re.compile(
    r"(?:^|[|,;]|\s)[\s*_]*(score\s*(?:for\s*)?(?:image\s*)?[ab]|winner)[\s*_]*:", re.IGNORECASE
)
_THINK_BLOCK_RE = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)
_THINK_TAG_RE = re.compile(r"</?think>", re.IGNORECASE)
_ANSWER_TAG_RE = re.compile(r"</?answer>", re.IGNORECASE)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None) | {
    0xA0: " ",
    0x09: " ",
    0xFF1A: ":",
    0x202F: " ",
}
_MAX_LABEL = 64


def normalize_text(text: str) -> str:
    """Unify line endings, spaces and invisible characters; drop reasoning blocks and code fences."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    text = _THINK_BLOCK_RE.sub("\n", text)
    lowered = text.lower()
    if "</think>" in lowered:  # the opening tag was part of the prompt: drop the reasoning before it
        text = text[lowered.rindex("</think>") + len("</think>") :]
    elif "<think>" in lowered:  # never closed: the answer ended while still thinking
        text = text[: lowered.index("<think>")]
    text = _ANSWER_TAG_RE.sub("", _THINK_TAG_RE.sub("", text))
    return "\n".join(line.rstrip() for line in text.split("\n") if not _FENCE_RE.match(line))


def normalize_label(label: str) -> str:
    """Lower-case, ``&`` → ``and``, underscores and punctuation → single spaces."""
    label = label.lower().replace("&", " and ").replace("_", " ")
    return _NON_WORD_RE.sub(" ", label).strip()


def _lookup(label: str) -> tuple[TokenKind, str] | None:
    norm = normalize_label(label)
    if not norm or len(norm) > _MAX_LABEL:
        return None
    for kind, table in (
        ("field", FIELD_ALIASES),
        ("dimension", DIMENSION_ALIASES),
        ("section", SECTION_ALIASES),
    ):
        if norm in table:
            return kind, table[norm]  # type: ignore[return-value]
    if norm.endswith(" score") and norm[: -len(" score")] in DIMENSION_ALIASES:
        return "dimension", DIMENSION_ALIASES[norm[: -len(" score")]]
    return None


def _strip_decor(text: str) -> str:
    return text.strip(_DECOR)


def classify_line(line: str, number: int) -> list[Token]:
    """The tokens a line holds (usually none or one)."""
    if not line.strip():
        return []
    if _RULE_RE.match(line):
        return [Token("rule", "", 0, "", number)]
    level = None
    rest = line
    m = _HASHES_RE.match(rest)
    if m:
        level = len(m.group(1))
        rest = rest[m.end() :]
    rest = rest.lstrip()
    m = _BULLET_RE.match(rest)
    if m:
        rest = rest[m.end() :]
    bold = rest.startswith(("**", "__"))
    rest = rest.lstrip(_DECOR)
    m = _NUMBER_RE.match(rest)
    numbered = m is not None
    if m:
        rest = rest[m.end() :].lstrip(_DECOR)
    bold = bold or rest.startswith(("**", "__"))
    marked = level is not None or bold or numbered
    token = _match_label(rest, level, number, marked)
    if token is None:
        return [Token("other", "", level, "", number)] if level is not None else []
    if token.kind == "field" and token.key in ("score_a", "score_b", "winner"):
        return _split_inline_fields(token)
    return [token]


def _match_label(rest: str, level: int | None, number: int, marked: bool) -> Token | None:
    sep = _LABEL_SEP_RE.search(rest, 0, _MAX_LABEL + 8)
    if sep:
        found = _lookup(rest[: sep.start()])
        if found:
            return Token(found[0], found[1], level, _strip_decor(rest[sep.end() :]), number, marked)
    whole = _strip_decor(rest)
    if len(whole) <= _MAX_LABEL + 8:
        found = _lookup(whole)
        if found:
            return Token(found[0], found[1], level, "", number, marked)
    m = _SCORE_NO_COLON_RE.match(rest)
    if m:
        found = _lookup(m.group("label"))
        if found:
            return Token(found[0], found[1], level, _strip_decor(rest[m.end() :]), number, marked)
    return None


def _split_inline_fields(token: Token) -> list[Token]:
    tokens: list[Token] = []
    current, inline = token, token.inline
    while True:
        m = _INLINE_FIELD_RE.search(inline, 1)
        found = _lookup(m.group(1)) if m else None
        if m is None or found is None:
            tokens.append(
                Token(current.kind, current.key, current.level, inline, current.line, current.marked)
            )
            return tokens
        tokens.append(
            Token(
                current.kind,
                current.key,
                current.level,
                _strip_decor(inline[: m.start()]),
                current.line,
                current.marked,
            )
        )
        current = Token(found[0], found[1], token.level, "", token.line, token.marked)
        inline = _strip_decor(inline[m.end() :])


def tokenize(text: str) -> tuple[list[str], list[Token]]:
    """Split normalized ``text`` into lines and the structural tokens found on them."""
    lines = text.split("\n")
    tokens = [tok for i, line in enumerate(lines) for tok in classify_line(line, i)]
    return lines, tokens


def terminates(nxt: Token, owner: Token) -> bool:
    """Whether ``nxt`` ends the text owned by ``owner``."""
    if nxt.kind != "other":
        return True
    own_level = owner.level if owner.level is not None else 1
    return nxt.level is not None and nxt.level <= own_level


def token_body(lines: list[str], tokens: list[Token], index: int) -> str:
    """The text ``tokens[index]`` owns: its inline text plus the lines up to the next terminating token."""
    tok = tokens[index]
    nxt = index + 1
    if nxt < len(tokens) and tokens[nxt].line == tok.line:
        return tok.inline.strip()
    end = len(lines)
    for later in tokens[nxt:]:
        if terminates(later, tok):
            end = later.line
            break
    body = [tok.inline, *lines[tok.line + 1 : end]]
    return "\n".join(body).strip()
