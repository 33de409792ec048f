"""Tokenize a critic's answer into headings and the text that belongs to each.

The critic answers in a markdown layout (``# Detailed Judgement``, ``1. Text
Faithfulness:``, ``## Score: 3.5`` ...), but real models drift: bold instead of
``#``, other header levels, missing numbers or colons, ``&`` for "and", CRLF,
``<think>`` blocks. This module only finds structure: each line that is a known
label becomes a :class:`Token`, and a :class:`Layout` groups the tokens into
dimension blocks and returns the text each token owns. Reading scores and
winners out of that text is :mod:`gcr.critic.parser`'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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
        "score": ("score", "rating", "final score"),
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
    r"^(?P<label>(?:score|rating)(?:\s*(?:for\s*)?(?:image\s*)?\(?[ab]\)?(?![a-z]))?)[\s*_]*+[-–—]?\s*+"
    r"(?=[\d.]|n\s*/\s*a\b|na\b)",
    re.IGNORECASE,
)
# Further pairwise fields written on the same line, e.g. "Score A: 3 | Score B: 2.5".
_INLINE_FIELD_RE = re.compile(
    r"(?:^|[|,;]|\s)[\s*_]*+(score\s*+(?:for\s+)?(?:image\s*+)?[ab]|winner)[\s*_]*+:", re.IGNORECASE
)
_ANSWER_TAG_RE = re.compile(r"</?answer>", re.IGNORECASE)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None) | {
    0xA0: " ",
    0x09: " ",
    0xFF1A: ":",
    0x202F: " ",
}
_MAX_LABEL = 64
_PAREN_RE = re.compile(r"\([^()]*\)")
# Only the start of a long line is searched for further fields on the same line.
_MAX_INLINE_SCAN = 400


def normalize_text(text: str) -> str:
    """Unify line endings, spaces and invisible characters; drop reasoning blocks and code fences."""
    text = _drop_reasoning(text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE))
    text = _ANSWER_TAG_RE.sub("", text)
    return "\n".join(line.rstrip() for line in text.split("\n") if not _FENCE_RE.match(line))


def _drop_reasoning(text: str) -> str:
    """Remove ``<think>`` reasoning: all before the last ``</think>``, all after an unclosed ``<think>``."""
    lowered = text.lower()
    close = lowered.rfind("</think>")
    if close != -1:  # covers "<think>...</think>" and a prompt that already opened the block
        text, lowered = text[close + len("</think>") :], lowered[close + len("</think>") :]
    start = lowered.find("<think>")
    return text if start == -1 else text[:start]


def ends_in_reasoning(text: str) -> bool:
    """Whether ``text`` opens a ``<think>`` block that it never closes (cut off while reasoning)."""
    lowered = text.lower()
    return lowered.find("<think>", lowered.rfind("</think>") + 1) != -1


def normalize_label(label: str) -> str:
    """Lower-case, ``&`` → ``and``, underscores and punctuation → single spaces."""
    label = label.lower().replace("&", " and ").replace("_", " ")
    return _NON_WORD_RE.sub(" ", label).strip()


def _lookup(label: str) -> tuple[TokenKind, str] | None:
    norm = normalize_label(label)
    if not norm or len(norm) > _MAX_LABEL:
        return None
    found = _lookup_normalized(norm)
    if found is None and "(" in label:  # "Text Faithfulness (TF)", "Score (1-4)"
        found = _lookup_normalized(normalize_label(_PAREN_RE.sub(" ", label)))
    return found


def _lookup_normalized(norm: str) -> tuple[TokenKind, str] | None:
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
    bullet = m is not None
    if m:
        rest = rest[m.end() :]
    bold = rest.startswith(("**", "__"))
    rest = rest.lstrip(_DECOR)
    m = _NUMBER_RE.match(rest)
    numbered = m is not None
    if m:
        rest = rest[m.end() :]
        bold = bold or rest.startswith(("**", "__"))
        rest = rest.lstrip(_DECOR)
    marked = level is not None or bold or numbered or bullet
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
            # "2. Physical and Visual Quality (3.25/4)": the parenthesis is the heading's inline text.
            paren = _PAREN_RE.search(whole) if found[0] == "dimension" else None
            inline = paren.group()[1:-1].strip() if paren else ""
            return Token(found[0], found[1], level, inline, number, marked)
    m = (
        _SCORE_NO_COLON_RE.match(rest) if marked else None
    )  # "## Score 3.5", but not prose like "Score 3 is..."
    if m:
        found = _lookup(m.group("label"))
        if found:
            return Token(found[0], found[1], level, _strip_decor(rest[m.end() :]), number, marked)
    return None


def _split_inline_fields(token: Token) -> list[Token]:
    tokens: list[Token] = []
    current, inline = token, token.inline
    while True:
        m = _INLINE_FIELD_RE.search(inline, 1, _MAX_INLINE_SCAN)
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


def _terminates(nxt: Token, owner: Token) -> bool:
    """Whether ``nxt`` ends the text owned by ``owner``: any known label or rule, or a header as high."""
    if nxt.kind != "other":
        return True
    own_level = owner.level if owner.level is not None else 1
    return nxt.level is not None and nxt.level <= own_level


def _in_judgement_zone(tokens: list[Token]) -> list[Token]:
    """Drop dimension and score-like tokens outside the judgement (in the analysis or the summary)."""
    has_judgement = any(t.kind == "section" and t.key == "judgement" for t in tokens)
    open_zone = not has_judgement
    kept: list[Token] = []
    for tok in tokens:
        if tok.kind == "section":
            if tok.key == "judgement":
                open_zone = True
            elif tok.key in ("summary", "refinement") or (has_judgement and tok.key == "analysis"):
                open_zone = False
        elif not open_zone and (tok.kind == "dimension" or (tok.kind == "field" and tok.key in _JUDGED)):
            continue
        kept.append(tok)
    return kept


_JUDGED = frozenset({"justification", "score", "score_a", "score_b", "winner"})


@dataclass
class DimensionBlock:
    """A dimension heading and the fields written under it, each key with its tokens in order."""

    key: str
    heading: Token
    fields: dict[str, list[Token]] = field(default_factory=dict)


class Layout:
    """The structure of one answer: its lines, its tokens, and the text each token owns."""

    def __init__(self, text: str) -> None:
        self.lines, tokens = tokenize(normalize_text(text))
        self.tokens = _in_judgement_zone(tokens)
        self._index = {id(tok): i for i, tok in enumerate(self.tokens)}
        self._bodies: dict[int, str] = {}

    def body(self, tok: Token) -> str:
        """The inline text of ``tok`` plus the lines up to the next token that ends it."""
        i = self._index[id(tok)]
        if i not in self._bodies:
            self._bodies[i] = self._body(i)
        return self._bodies[i]

    def _body(self, i: int) -> str:
        tok = self.tokens[i]
        if i + 1 < len(self.tokens) and self.tokens[i + 1].line == tok.line:
            return tok.inline.strip()  # another field follows on the same line
        end = next((t.line for t in self.tokens[i + 1 :] if _terminates(t, tok)), len(self.lines))
        return "\n".join([tok.inline, *self.lines[tok.line + 1 : end]]).strip()

    def first(self, kind: TokenKind, key: str) -> Token | None:
        return next((t for t in self.tokens if t.kind == kind and t.key == key), None)

    def has(self, kind: TokenKind, *keys: str) -> bool:
        return any(t.kind == kind and t.key in keys for t in self.tokens)

    def preamble(self) -> str:
        """The text before the first structural line."""
        first = self.tokens[0].line if self.tokens else len(self.lines)
        return "\n".join(self.lines[:first]).strip()

    def dimension_blocks(self) -> list[DimensionBlock]:
        """Every dimension heading in text order, with the fields up to the next dimension or section."""
        blocks: list[DimensionBlock] = []
        current: DimensionBlock | None = None
        for tok in self.tokens:
            if tok.kind == "dimension":
                current = DimensionBlock(tok.key, tok)
                blocks.append(current)
            elif tok.kind == "section":
                current = None
            elif tok.kind == "field" and current is not None:
                current.fields.setdefault(tok.key, []).append(tok)
        return blocks
