"""Load the hand-written critique corpus: each ``NAME.md`` answer has a ``NAME.json`` expectation.

Expectation keys (all but ``mode`` and ``task`` optional):
``mode`` pointwise|pairwise, ``task`` t2i|edit; ``error``: a substring of the
expected CritiqueParseError message (then nothing else is checked);
``scores``: the exact set of judged dimensions, pointwise ``{dim: 3.5 | "N/A"}``,
pairwise ``{dim: [a, b]}``; ``winners`` ``{dim: "A"|"B"|"tie"|null}``;
``preference``; ``truncated``; ``refined_request``; ``summary_startswith``;
``analysis_startswith``; ``justification_contains`` / ``justification_startswith`` ``{dim: text}``;
``warning_count`` (exact); ``warnings_contain`` (substrings, each found in some warning).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CORPUS_DIR = Path(__file__).parent / "corpus"


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    expected: dict[str, Any]

    @property
    def mode(self) -> str:
        return self.expected["mode"]

    @property
    def task(self) -> str:
        return self.expected["task"]


def load_corpus() -> list[Case]:
    cases = []
    for md in sorted(CORPUS_DIR.glob("*.md")):
        sidecar = md.with_suffix(".json")
        if not sidecar.exists():
            raise FileNotFoundError(f"corpus file {md.name} has no {sidecar.name}")
        # newline="" keeps CRLF files byte-exact.
        with md.open(encoding="utf-8", newline="") as fh:
            text = fh.read()
        cases.append(Case(md.stem, text, json.loads(sidecar.read_text(encoding="utf-8"))))
    return cases
