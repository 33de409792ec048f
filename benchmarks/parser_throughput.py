"""How fast the critique parser reads answers: the whole test corpus parsed N times.

Usage: python benchmarks/parser_throughput.py [--repeat N]

Prints parses per second and microseconds per parse, overall and per mode.
Unparseable corpus entries (expected CritiqueParseError) are timed too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

from gcr.critic.parser import parse_critique, parse_pairwise
from gcr.errors import CritiqueParseError

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "critic" / "corpus"


def load() -> list[tuple[str, str, str]]:
    """(mode, task, text) for every corpus answer."""
    items = []
    for md in sorted(CORPUS.glob("*.md")):
        meta = json.loads(md.with_suffix(".json").read_text(encoding="utf-8"))
        with md.open(encoding="utf-8", newline="") as fh:
            items.append((meta["mode"], meta["task"], fh.read()))
    return items


def run(items: list[tuple[str, str, str]], repeat: int) -> tuple[int, float]:
    parsers = {"pointwise": parse_critique, "pairwise": parse_pairwise}
    count = 0
    start = time.perf_counter()
    for _ in range(repeat):
        for mode, task, text in items:
            with contextlib.suppress(CritiqueParseError):
                parsers[mode](text, task)
            count += 1
    return count, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="how many times to parse the corpus")
    args = parser.parse_args()
    items = load()
    run(items, 3)  # warm up regex caches
    chars = sum(len(t) for _, _, t in items)
    print(f"corpus: {len(items)} answers, {chars / len(items):.0f} characters each on average")
    print(f"repeat: {args.repeat}")
    for label, subset in (
        ("all", items),
        ("pointwise", [i for i in items if i[0] == "pointwise"]),
        ("pairwise", [i for i in items if i[0] == "pairwise"]),
    ):
        count, seconds = run(subset, args.repeat)
        print(f"{label:>9}: {count / seconds:9.0f} parses/s  {seconds / count * 1e6:8.1f} µs/parse")


if __name__ == "__main__":
    main()
