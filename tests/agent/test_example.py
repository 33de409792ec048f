"""examples/embed_subgraph.py runs offline (tiny pipeline, toy critic), with and without a review pause."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embed_subgraph.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("embed_subgraph_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # LangGraph resolves the host state's annotations through it
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def args(tmp_path: Path, **kw) -> argparse.Namespace:
    base = {"topic": "a lighthouse at dusk", "generator": "", "critic": None, "model": None, "rounds": 2,
            "out": tmp_path / "run", "interactive": False, "offline": True}  # fmt: skip
    return argparse.Namespace(**{**base, **kw})


def test_offline_example_runs_the_subgraph(example, tmp_path, capsys):
    asyncio.run(example.main(args(tmp_path)))
    out = capsys.readouterr().out
    assert "round 0: best reward" in out and "round 1: best reward" in out
    best_image = out.strip().splitlines()[-1]
    assert Path(best_image).is_file() and Path(best_image).is_relative_to(tmp_path / "run")
    assert (tmp_path / "run" / "report.html").is_file()


def test_offline_example_pauses_for_review(example, tmp_path, capsys, monkeypatch):
    answers = iter(["r"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    asyncio.run(example.main(args(tmp_path, interactive=True, rounds=3)))
    out = capsys.readouterr().out
    assert "(stopped: user_rejected)" in out
