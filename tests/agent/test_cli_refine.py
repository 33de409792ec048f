"""``gcr refine`` end to end: tiny diffusers pipelines, gcr's HTTP critic, the prompt-aware stub server."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from PIL import Image

import gcr.cli.refine as refine_cli
from gcr.agent.cache import ArtifactCache
from gcr.agent.components import Components
from gcr.agent.refiner import make_refiner
from gcr.critic.loading import load_critic
from gcr.generators.registry import create_generator
from stubs.cli import run_gcr
from stubs.critic_server import StubReply
from stubs.prompt_aware_critic import (
    PromptAwareCriticServer,
    PromptAwareScript,
    RecordingGenerator,
    SceneBook,
)


def gcr(monkeypatch, capsys, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run the console script in-process: (exit code, stdout, stderr); ``stdin=None`` leaves stdin alone."""
    return run_gcr(monkeypatch, capsys, *args, stdin=stdin)


class World:
    """The stub critic server, the scene book, and every generator call across CLI invocations."""

    def __init__(self, script: PromptAwareScript | None = None) -> None:
        self.book = SceneBook()
        self.script = script or PromptAwareScript()
        self.server = PromptAwareCriticServer(self.script, self.book).start()
        self.calls: list[tuple[str, int]] = []
        self.stopper: threading.Thread | None = None

    def restart(self) -> None:
        if self.stopper is not None:
            self.stopper.join()
        self.server = PromptAwareCriticServer(self.script, self.book, port=self.server.requested_port).start()

    def load_components(self, spec) -> Components:
        """Like gcr.agent.components.load_components, with the generator recorded for the stub's eyes
        and a critic that gives up quickly when the server is gone."""
        critic = load_critic(spec.critic, model=spec.critic_model, max_retries=0, timeout=5)
        inner = create_generator(spec.generator_kind, spec.generator, **spec.generator_options)
        return Components(
            generator=RecordingGenerator(inner, self.book, self.calls),
            critic=critic,
            refiner=make_refiner(spec.refiner, url=spec.refiner_url, model=spec.refiner_model),
            cache=ArtifactCache(spec.cache_dir) if spec.use_cache else None,
        )


@pytest.fixture
def world(monkeypatch):
    w = World()
    monkeypatch.setattr(refine_cli, "load_components", w.load_components)
    yield w
    w.server.stop()


def base_args(world: World, tiny_pipeline_dir, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "refine", "a red cat on a wooden table",
        "--generator", str(tiny_pipeline_dir("sd")), "--device", "cpu",
        "--critic", world.server.url, "--model", "stub-critic",
        "--steps", "2", "--size", "32",
        "--target", "1", "--max-rounds", "5",
        "--cache-dir", str(tmp_path / "cache"),
        *extra,
    ]  # fmt: skip


def test_cli_writes_the_run_folder_and_report(monkeypatch, capsys, world, tiny_pipeline_dir, tmp_path):
    run = tmp_path / "run"
    code, out, err = gcr(
        monkeypatch,
        capsys,
        *base_args(world, tiny_pipeline_dir, tmp_path, "--candidates", "2", "--out", str(run)),
    )
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    best_path = out.strip().splitlines()[-1]
    assert best_path == summary["best"]["image"] == str(run / "rounds" / "r02" / "c01.png")
    assert summary["prompts"] == [
        "a red cat on a wooden table",
        "a red cat on a wooden table, golden light",
        "a red cat on a wooden table, golden light, sharp focus",
    ]
    assert summary["stop_reason"] == "nothing_new"
    assert summary["round_rewards"] == sorted(summary["round_rewards"])
    assert summary["final_reward"] > summary["start_reward"]
    assert summary["generations"] == 6 and summary["critic"] == "stub-critic"
    assert set(summary["timings"]) == {"generate_s", "critique_s", "refine_s", "rounds_s", "wall_s"}
    assert summary["timings"]["generate_s"] > 0
    for r in range(3):
        for c in range(2):
            with Image.open(run / "rounds" / f"r{r:02d}" / f"c{c:02d}.png") as img:
                assert img.size == (32, 32)
            critique = json.loads((run / "rounds" / f"r{r:02d}" / f"c{c:02d}.critique.json").read_text())
            assert critique["judgements"][0]["dimension"] == "text_faithfulness"
            assert (
                "## Refined Request:" in (run / "rounds" / f"r{r:02d}" / f"c{c:02d}.critique.txt").read_text()
            )
    trajectory = [json.loads(line) for line in (run / "trajectory.jsonl").read_text().splitlines()]
    assert [t["round"] for t in trajectory] == [0, 1, 2]
    assert all(len(t["candidates"]) == 2 for t in trajectory)
    spec = json.loads((run / "run.json").read_text())
    assert spec["critic"] == world.server.url and spec["context"]["candidates"] == 2
    assert (run / "checkpoints.sqlite").is_file()
    report = (run / "report.html").read_text()
    assert "table<ins>, golden light</ins>" in report
    assert "Physical and Visual Quality" in report and "nothing_new" in report
    for src in re.findall(r"<img src='([^']+)'", report):
        assert (run / src).is_file(), src  # relative paths that resolve inside the run folder
    assert "round" in err and "best image" in err  # the live table and the closing line


def test_cli_json_prints_the_summary(monkeypatch, capsys, world, tiny_pipeline_dir, tmp_path):
    run = tmp_path / "run"
    args = base_args(world, tiny_pipeline_dir, tmp_path, "--max-rounds", "2", "--out", str(run), "--json")
    code, out, err = gcr(monkeypatch, capsys, *args)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["rounds"] == 2 and summary["stop_reason"] == "max_rounds"
    assert summary == json.loads((run / "summary.json").read_text())


def test_cli_resume_after_the_critic_dies_mid_run(monkeypatch, capsys, world, tiny_pipeline_dir, tmp_path):
    answered = {"n": 0}
    respond = world.server.responder

    def dying(request):
        if request.image_urls():
            answered["n"] += 1
            if answered["n"] == 4:  # round 1, second critique: the server goes away
                world.stopper = threading.Thread(target=world.server.stop, daemon=True)
                world.stopper.start()
                return StubReply.dropped()
        return respond(request)

    world.server.responder = dying
    run = tmp_path / "run"
    code, out, err = gcr(
        monkeypatch,
        capsys,
        *base_args(world, tiny_pipeline_dir, tmp_path, "--candidates", "2", "--out", str(run)),
    )
    assert code == 1
    assert "critic" in err.lower() and f"gcr refine --resume {run}" in " ".join(err.split())
    made_before = list(world.calls)
    assert len(made_before) == 4  # rounds 0 and 1 were generated before the critic died

    world.restart()
    code, out, err = gcr(monkeypatch, capsys, "refine", "--resume", str(run))
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["rounds"] == 3 and summary["stop_reason"] == "nothing_new"
    assert world.calls[:4] == made_before
    assert len(world.calls) == 6 == len(set(world.calls))  # only round 2 was generated after the resume
    assert out.strip().splitlines()[-1] == summary["best"]["image"]

    # Starting a new run in the same folder is refused; resuming a finished run changes nothing.
    code, _, err = gcr(monkeypatch, capsys, *base_args(world, tiny_pipeline_dir, tmp_path, "--out", str(run)))
    assert code == 1 and "already holds a run" in err
    code, out, _ = gcr(monkeypatch, capsys, "refine", "--resume", str(run))
    assert code == 0 and out.strip().splitlines()[-1] == summary["best"]["image"]
    assert len(world.calls) == 6


def test_cli_interactive_edit_then_reject(monkeypatch, capsys, world, tiny_pipeline_dir, tmp_path):
    run = tmp_path / "run"
    args = base_args(world, tiny_pipeline_dir, tmp_path, "--interactive", "--out", str(run))
    code, _, err = gcr(monkeypatch, capsys, *args, stdin="e\na red cat on a wooden table, sharp focus\nr\n")
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["prompts"] == ["a red cat on a wooden table", "a red cat on a wooden table, sharp focus"]
    assert summary["stop_reason"] == "user_rejected"
    assert "review after round 0" in err


def test_cli_llm_refiner(monkeypatch, capsys, world, tiny_pipeline_dir, tmp_path):
    run = tmp_path / "run"
    args = base_args(world, tiny_pipeline_dir, tmp_path, "--out", str(run), "--refiner", "llm",
                     "--refiner-url", world.server.url, "--refiner-model", "stub-writer")  # fmt: skip
    code, _, err = gcr(monkeypatch, capsys, *args)
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["refiner"] == "llm"
    assert summary["prompts"][1] == "a red cat on a wooden table, golden light"
    rewrites = [r for r in world.server.chat_requests if not r.image_urls()]
    assert rewrites and rewrites[0].body["model"] == "stub-writer"
    assert "<user_request>\na red cat on a wooden table\n</user_request>" in rewrites[0].user_text()


def test_cli_bad_input(monkeypatch, capsys, tmp_path):
    code, _, err = gcr(monkeypatch, capsys, "refine", "   ")
    assert code == 1 and "the prompt is empty" in err
    broken = tmp_path / "broken.png"
    broken.write_text("no image here")
    code, _, err = gcr(monkeypatch, capsys, "refine", "make it blue", "--image", str(broken))
    assert code == 1 and "not an image" in err
    code, _, err = gcr(monkeypatch, capsys, "refine", "a cat", "--candidates", "0")
    assert code == 1 and "candidates must be at least 1" in err
    code, _, err = gcr(monkeypatch, capsys, "refine", "--resume", str(tmp_path))
    assert code == 1 and "run.json" in err
    code, _, err = gcr(monkeypatch, capsys, "refine", "a cat", "--resume", str(tmp_path))
    assert code == 1 and "drop the prompt" in err


def test_cli_interactive_without_answers_pauses_resumably(
    monkeypatch, capsys, world, tiny_pipeline_dir, tmp_path
):
    run = tmp_path / "run"
    args = base_args(world, tiny_pipeline_dir, tmp_path, "--interactive", "--out", str(run))
    code, _, err = gcr(monkeypatch, capsys, *args, stdin="")
    assert code == 1 and "standard input, which is closed" in err
    assert f"gcr refine --resume {run}" in " ".join(err.split())
    code, _, err = gcr(monkeypatch, capsys, "refine", "--resume", str(run), stdin="r\n")
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "user_rejected" and summary["rounds"] == 1
    assert len(world.calls) == 1
