"""The intent guard: a refined prompt must still ask for what the user asked for.

A refiner (the critic's own refined request or an LLM rewrite) may return
nothing, ramble on, or quietly drop part of the request. The guard turns such
a proposal down, with a reason, and the graph keeps the previous prompt.

Checks, in order:

* empty after trimming;
* longer than allowed: ``max_growth`` times the user's prompt (never less than
  ``min_allowance`` characters), and never more than ``max_chars``;
* text the user put in double quotes (text to render) is missing verbatim;
* a number the user gave (``3`` or ``three``) is missing in either spelling;
* too few of the user's content words survive (fewer than ``min_coverage``);
  a word counts as kept when the proposal has the same word up to a plural
  ending, or a longer word starting with it (``photo`` in ``photograph``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”')
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "twenty": "20", "hundred": "100",
}  # fmt: skip

# Words that carry no request content of their own (articles, prepositions,
# pronouns, auxiliaries, and generic editing verbs).
_FILLER_WORDS = """
    a an the and or but nor of in on at to for from by with without into onto over under above below
    near next than then that this these those there here it its it's is are was were be been being
    as so such very really just also too some any each every all both few more most other same own
    make made turn change add put let please show image picture while keep keeping
    i me my we our you your he she they them their his her who whom which what when where why how
    do does did doing have has had can could should would may might must will shall not no yes
"""
_FILLER = frozenset(_FILLER_WORDS.split())


@dataclass(frozen=True)
class GuardVerdict:
    """The guard's answer. ``prompt`` is the cleaned proposal when accepted."""

    accepted: bool
    prompt: str | None
    reason: str | None = None


@dataclass(frozen=True)
class PromptGuard:
    """Accepts or rejects a proposed prompt against the user's original request."""

    max_chars: int = 2000
    max_growth: float = 8.0
    min_allowance: int = 400
    min_coverage: float = 0.5

    def check(self, original: str, proposed: str | None) -> GuardVerdict:
        """Judge ``proposed`` as a rewrite of the user's ``original`` request."""
        cleaned = " ".join((proposed or "").split())
        if not cleaned:
            return GuardVerdict(False, None, "the proposal is empty")
        allowed = min(self.max_chars, max(self.min_allowance, int(self.max_growth * len(original))))
        if len(cleaned) > allowed:
            return GuardVerdict(
                False, None, f"the proposal is {len(cleaned)} characters long; at most {allowed} allowed"
            )
        for quoted in quoted_text(original):
            if quoted not in cleaned:
                return GuardVerdict(False, None, f'the proposal drops the quoted text "{quoted}"')
        proposal_words = set(_words(cleaned))
        proposal_numbers = {_NUMBER_WORDS.get(w, w) for w in proposal_words}
        for number in numbers(original):
            if number not in proposal_numbers:
                return GuardVerdict(False, None, f"the proposal drops the number {number}")
        wanted = content_words(original)
        if wanted:
            kept = [w for w in wanted if _kept(w, proposal_words)]
            coverage = len(kept) / len(wanted)
            if coverage < self.min_coverage:
                missing = ", ".join(w for w in wanted if w not in kept)
                return GuardVerdict(
                    False,
                    None,
                    f"the proposal keeps {len(kept)} of {len(wanted)} words of the request "
                    f"(missing: {missing}); at least {self.min_coverage:.0%} must stay",
                )
        return GuardVerdict(True, cleaned)


def quoted_text(text: str) -> list[str]:
    """Spans the user wrote in straight or curly double quotes."""
    return [a or b for a, b in _QUOTED.findall(text)]


def numbers(text: str) -> list[str]:
    """Numbers in ``text`` as digit strings (``three`` -> ``3``), in order, without repeats."""
    out: list[str] = []
    for word in _words(text):
        value = _NUMBER_WORDS.get(word, word if word.isdigit() else None)
        if value is not None and value not in out:
            out.append(value)
    return out


def content_words(text: str) -> list[str]:
    """The words that carry the request: not filler, not numbers, at least three letters."""
    out: list[str] = []
    for word in _words(text):
        if len(word) < 3 or word in _FILLER or word.isdigit() or word in _NUMBER_WORDS:
            continue
        stem = _stem(word)
        if stem not in out:
            out.append(stem)
    return out


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _stem(word: str) -> str:
    """Drop a plural ending: ``berries`` -> ``berry``, ``horses`` -> ``horse`` (not ``glass``)."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _kept(stem: str, proposal_words: set[str]) -> bool:
    for word in proposal_words:
        other = _stem(word)
        if other == stem or (len(stem) >= 3 and other.startswith(stem)):
            return True
    return False
