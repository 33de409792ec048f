"""gcr critique: human and JSON output against the stub server, and clear errors for bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from gcr.cli.app import main
from gcr.critic.schema import Critique, PairwiseCritique
from stubs.critic_server import (
    GOOD_EDIT_ANSWER,
    GOOD_PAIRWISE_T2I_ANSWER,
    GOOD_T2I_ANSWER,
    StubCriticServer,
    StubReply,
)


def gcr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run the console script's entry point in-process: (exit code, stdout, stderr on one line)."""
    monkeypatch.setattr(sys, "argv", ["gcr", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())  # messages are wrapped to the terminal width


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, color in {"red": (255, 0, 0), "blue": (0, 0, 255), "src": (9, 9, 9)}.items():
        paths[name] = tmp_path / f"{name}.png"
        Image.new("RGB", (32, 32), color).save(paths[name])
    paths["text"] = tmp_path / "notes.png"
    paths["text"].write_text("this is not an image")
    paths["dir"] = tmp_path / "folder.png"
    paths["dir"].mkdir()
    return paths


def test_human_output_shows_table_reward_and_refined_request(monkeypatch, capsys, critic_stub, images):
    critic_stub.enqueue(GOOD_T2I_ANSWER)
    code, out, err = gcr(monkeypatch, capsys, "critique", str(images["red"]), "--prompt", "a red cube",
                         "--critic", critic_stub.url)  # fmt: skip
    assert code == 0, err
    for expected in ("Text Faithfulness", "Physical and Visual Quality", "Text Rendering", "3.5", "N/A",
                     "Normalized reward: 0.750", "Summary: A faithful image", "Refined request",
                     "crisp contact shadow", "stub-critic"):  # fmt: skip
        assert expected in out, expected
    body = critic_stub.chat_requests[0].body
    assert body["temperature"] == pytest.approx(0.1) and body["max_tokens"] == 2048


def test_json_output_is_the_schema(monkeypatch, capsys, critic_stub, images) -> None:
    critic_stub.enqueue(GOOD_EDIT_ANSWER)
    code, out, err = gcr(monkeypatch, capsys, "critique", str(images["blue"]), "--prompt", "make it blue",
                         "--source", str(images["src"]), "--critic", critic_stub.url, "--json",
                         "--max-tokens", "300", "--temperature", "0.3")  # fmt: skip
    assert code == 0, err
    critique = Critique.model_validate_json(out)
    assert critique.task.value == "edit" and critique.score("image_faithfulness") == 3.25
    assert json.loads(out)["raw_text"] == GOOD_EDIT_ANSWER
    body = critic_stub.chat_requests[0].body
    assert (body["max_tokens"], body["temperature"]) == (300, 0.3)
    assert len(critic_stub.chat_requests[0].image_urls()) == 2


def test_pairwise_output_shows_both_scores_and_the_preference(monkeypatch, capsys, critic_stub, images):
    critic_stub.enqueue(GOOD_PAIRWISE_T2I_ANSWER, GOOD_PAIRWISE_T2I_ANSWER)
    args = ["critique", str(images["red"]), "--prompt", "a red cube", "--against", str(images["blue"]),
            "--critic", critic_stub.url]  # fmt: skip
    code, out, err = gcr(monkeypatch, capsys, *args)
    assert code == 0, err
    wanted = ("Score A", "Score B", "Winner", "Overall preference: B (blue.png)", "totals A 8 · B 8.5")
    for expected in wanted:
        assert expected in out, expected
    code, out, _ = gcr(monkeypatch, capsys, *args, "--json")
    assert code == 0 and PairwiseCritique.model_validate_json(out).preference() == "B"


def test_model_name_and_custom_template(monkeypatch, capsys, images, tmp_path) -> None:
    template = tmp_path / "t.md"
    template.write_text("<!-- system -->\nBe terse.\n<!-- user -->\n{request}\n<image:candidate>\n")
    with StubCriticServer(models=("one", "two")) as stub:
        stub.enqueue(GOOD_T2I_ANSWER)
        code, _, err = gcr(monkeypatch, capsys, "critique", str(images["red"]), "--prompt", "a cube",
                           "--critic", stub.url, "--model", "two", "--template", str(template))  # fmt: skip
        assert code == 0, err
        sent = stub.chat_requests[0]
        assert sent.body["model"] == "two"
        assert sent.messages[0]["content"] == "Be terse."


def test_truncated_answer_is_flagged(monkeypatch, capsys, critic_stub, images) -> None:
    critic_stub.enqueue(StubReply.length(GOOD_T2I_ANSWER))
    code, _, err = gcr(monkeypatch, capsys, "critique", str(images["red"]), "--prompt", "a red cube",
                       "--critic", critic_stub.url)  # fmt: skip
    assert code == 0
    assert "cut off" in err and "--max-tokens" in err


@pytest.mark.parametrize(
    ("which", "extra", "message"),
    [
        ("missing", [], "image file not found"),
        ("text", [], "not an image"),
        ("dir", [], "not a file"),
        ("red", ["--prompt", "   "], "--prompt is empty"),
        ("red", ["--task", "video"], "unknown task 'video'"),
        ("red", ["--task", "edit"], "needs the source image"),
        ("red", ["--source", "nope.png"], "image file not found"),
        ("red", ["--against", "nope.png"], "image file not found"),
        ("red", ["--max-tokens", "0"], "--max-tokens must be at least 1"),
        ("red", ["--reward", "beauty=2"], "unknown dimension"),
        ("red", ["--template", "no-such-template.md"], "critic template not found"),
    ],
)
def test_bad_input_is_one_clear_error(monkeypatch, capsys, critic_stub, images, which, extra, message):
    critic_stub.enqueue(GOOD_T2I_ANSWER)
    image = str(images.get(which, Path("missing.png")))
    args = ["critique", image, "--critic", critic_stub.url, *extra]
    if "--prompt" not in extra:
        args += ["--prompt", "a red cube"]
    code, out, err = gcr(monkeypatch, capsys, *args)
    assert code == 1
    assert message in err
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    ("replies", "message"),
    [
        ([StubReply.error(500)] * 2, "kept failing with HTTP 500"),
        ([StubReply.invalid_json()], "not valid JSON"),
        ([StubReply.empty()], "empty answer"),
        (["no scores at all", "still none"], "no readable critique after 1 re-ask"),
    ],
)
def test_server_faults_are_one_clear_error(monkeypatch, capsys, critic_stub, images, replies, message):
    critic_stub.enqueue(*replies)
    code, _, err = gcr(monkeypatch, capsys, "critique", str(images["red"]), "--prompt", "a red cube",
                         "--critic", critic_stub.url, "--retries", "1")  # fmt: skip
    assert code == 1 and message in err and "Traceback" not in err


def test_server_down_is_one_clear_error(monkeypatch, capsys, images) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = gcr(monkeypatch, capsys, "critique", str(images["red"]), "--prompt", "a cube",
                       "--critic", f"http://127.0.0.1:{port}/v1", "--retries", "0")  # fmt: skip
    assert code == 1 and "is the server running" in err and "gcr serve critic" in err
    assert "Traceback" not in err


def test_slow_server_times_out(monkeypatch, capsys, critic_stub, images) -> None:
    critic_stub.enqueue(StubReply.ok(GOOD_T2I_ANSWER, delay=2.0), times=5)
    code, _, err = gcr(monkeypatch, capsys, "critique", str(images["red"]), "--prompt", "a cube",
                       "--critic", critic_stub.url, "--timeout", "0.3", "--retries", "0")  # fmt: skip
    assert code == 1 and "0.3s timeout" in err


def test_default_critic_offline_fails_clearly(monkeypatch, capsys, images, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    code, _, err = gcr(monkeypatch, capsys, "critique", str(images["red"]), "--prompt", "a cube",
                       "--device", "cpu")  # fmt: skip
    assert code == 1 and "TIGER-Lab/RationalRewards-8B-T2I" in err and "Traceback" not in err


def test_local_critic_folder_runs_in_process(monkeypatch, capsys, images, tiny_critic_dir) -> None:
    code, _, err = gcr(monkeypatch, capsys, "critique", str(images["red"]), "--prompt", "a cube",
                       "--critic", str(tiny_critic_dir), "--device", "cpu", "--max-tokens", "8")  # fmt: skip
    # A random tiny model writes gibberish: the answer is refused with its raw text, never scored 0.
    assert code == 1 and "cut off at max_tokens=8" in err and "answer began" in err
