"""Unbounded input is refused where it enters: huge prompts, huge refined prompts, decompression bombs."""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from pathlib import Path

import pydantic
import pytest

from gcr.agent import RunFolder, RunSpec, run_refine
from gcr.agent.guard import PromptGuard
from gcr.agent.refiner import Proposal
from gcr.bench.prompt_files import load_prompt_set
from gcr.errors import DatasetError, ImageError, InputError, RunError
from gcr.images import load_image
from gcr.limits import MAX_PROMPT_CHARS
from stubs.cli import run_gcr as gcr

HUGE = "a cat " * (MAX_PROMPT_CHARS // 3)  # about twice the limit


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A tiny PNG file whose header claims ``side`` x ``side`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def test_a_prompt_set_row_over_the_limit_is_refused_at_load(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "fine"}) + "\n" + json.dumps({"prompt": HUGE}) + "\n")
    with pytest.raises(
        DatasetError, match=rf"p.jsonl:2: field 'prompt' is \d+ characters long.*{MAX_PROMPT_CHARS}"
    ):
        load_prompt_set(path)
    text = tmp_path / "p.txt"
    text.write_text("fine\n" + HUGE + "\n")
    with pytest.raises(DatasetError, match=r"p.txt:2: field 'prompt' is \d+ characters long"):
        load_prompt_set(text)


def test_gcr_refine_refuses_a_huge_prompt_before_loading_anything(monkeypatch, capsys, tmp_path):
    import gcr.cli.refine as refine_cli

    def never(spec):
        raise AssertionError("models were loaded for a prompt that is too long")

    monkeypatch.setattr(refine_cli, "load_components", never)
    code, _, err = gcr(monkeypatch, capsys, "refine", HUGE, "--out", str(tmp_path / "run"))
    assert code == 1 and "characters long" in err and str(MAX_PROMPT_CHARS) in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_the_graph_refuses_a_huge_prompt(harness):
    graph = harness.builder().compile()
    with pytest.raises(InputError, match="characters long"):
        asyncio.run(graph.ainvoke({"prompt": HUGE}, context=harness.context()))
    assert harness.inner.calls == 0


def test_a_run_json_with_a_huge_prompt_cannot_be_resumed(harness, tmp_path):
    folder = RunFolder(tmp_path / "run")
    asyncio.run(run_refine(harness.builder(), folder, RunSpec(prompt="a cat", context={"max_rounds": 1})))
    settings = json.loads(folder.file(RunFolder.SETTINGS).read_text())
    settings["prompt"] = HUGE
    folder.file(RunFolder.SETTINGS).write_text(json.dumps(settings))
    with pytest.raises(RunError, match=r"run\.json cannot be resumed: the prompt is \d+ characters long"):
        RunSpec.load(folder)


class _Rambler:
    """A refiner whose proposals are far over the limit."""

    name = "rambler"

    async def propose(self, request):
        return Proposal(prompt=request.current_prompt + ", golden light" * MAX_PROMPT_CHARS, note="rambled")


def test_a_refined_prompt_over_the_limit_is_a_failed_refinement_and_the_run_goes_on(harness, tmp_path):
    # Even a guard told to allow anything does not let it through.
    builder = harness.builder(refiner=_Rambler(), guard=PromptGuard(max_chars=10**9, max_growth=10**6))
    folder = RunFolder(tmp_path / "run")
    spec = RunSpec(prompt="a cat", context={"max_rounds": 3, "target_reward": None})
    outcome = asyncio.run(run_refine(builder, folder, spec))
    assert outcome.finished and outcome.values["best"] is not None
    refinement = outcome.values["rounds"][0]["refinement"]
    assert refinement["accepted"] is False and refinement["next_prompt"] == "a cat"
    assert f"at most {MAX_PROMPT_CHARS} characters" in refinement["reason"]
    assert outcome.values["stop_reason"] == "nothing_new"
    trajectory = folder.file(RunFolder.TRAJECTORY).read_text()
    assert f"at most {MAX_PROMPT_CHARS} characters" in trajectory


def test_an_edited_prompt_over_the_limit_is_refused():
    from gcr.agent import ReviewAnswer

    with pytest.raises(pydantic.ValidationError, match="characters long"):
        ReviewAnswer(action="edit", prompt=HUGE)


def test_a_decompression_bomb_is_an_image_error(tmp_path):
    bomb = bomb_png(tmp_path / "bomb.png")
    with pytest.raises(ImageError, match="too large to read safely"):
        load_image(bomb)


def test_gcr_critique_and_refine_report_a_bomb_in_one_line(monkeypatch, capsys, tmp_path):
    bomb = bomb_png(tmp_path / "bomb.png")
    fine = tmp_path / "fine.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(fine)
    runs = [
        ("critique", str(bomb), "--prompt", "a cat", "--critic", "http://127.0.0.1:9/v1"),
        (
            "critique",
            str(fine),
            "--prompt",
            "a cat",
            "--source",
            str(bomb),
            "--critic",
            "http://127.0.0.1:9/v1",
        ),
        ("refine", "make it blue", "--image", str(bomb), "--out", str(tmp_path / "run")),
    ]
    for args in runs:
        code, _, err = gcr(monkeypatch, capsys, *args)
        folded = " ".join(err.split())
        assert code == 1, err
        assert folded.startswith("error: image ") and "too large to read safely" in folded, err
        assert "Traceback" not in err and "DecompressionBombError" not in err


def test_a_negative_prompt_over_the_limit_is_a_config_error():
    from gcr.agent import RefineContext
    from gcr.errors import ConfigError

    with pytest.raises(ConfigError, match=r"negative_prompt is \d+ characters long"):
        RefineContext(negative_prompt=HUGE)


def test_an_edited_prompt_over_the_limit_is_a_short_error_and_the_review_stays_open(harness, tmp_path):
    folder = RunFolder(tmp_path / "run")
    spec = RunSpec(prompt="a cat", context={"max_rounds": 3, "interactive": True, "target_reward": None})
    with pytest.raises(InputError, match=r"the review answer cannot be used .*characters long"):
        asyncio.run(
            run_refine(
                harness.builder(), folder, spec, on_review=lambda r: {"action": "edit", "prompt": HUGE}
            )
        )
    paused = asyncio.run(run_refine(harness.builder(), folder, spec, resume=True))
    assert not paused.finished and paused.pending_review["proposed"] == "a cat, golden light"
    done = asyncio.run(run_refine(harness.builder(), folder, spec, resume=True, on_review=lambda r: "reject"))
    assert done.finished and done.values["stop_reason"] == "user_rejected"
