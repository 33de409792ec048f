"""The scripted mock critic: its stated rules, read by gcr's real parser and HTTP client; its CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from gcr.critic.loading import load_critic
from gcr.critic.parser import parse_critique
from gcr.critic.schema import Dimension
from gcr.critic.scoring import normalized_reward
from gcr.dev.mock_critic import MODEL_NAME, WANTED_DETAILS, MockCriticRules, MockCriticServer
from gcr.errors import CriticError
from gcr.task import Task

ROOT = Path(__file__).resolve().parents[2]


def picture(shade: int) -> Image.Image:
    return Image.new("RGB", (16, 16), (shade, 40, 90))


def test_each_new_image_follows_one_more_round_of_advice() -> None:
    rules = MockCriticRules(jitter=0.0)
    request = "a lighthouse at dawn"
    critiques = [parse_critique(rules.answer(Task.T2I, request, picture(s)), Task.T2I) for s in (1, 2, 3)]
    tf = [c.score(Dimension.TEXT_FAITHFULNESS) for c in critiques]
    assert tf == [1.5, 2.0, 2.5]
    assert [c.score(Dimension.PHYSICAL_QUALITY) for c in critiques] == [1.75, 2.25, 2.75]
    assert critiques[0].score(Dimension.TEXT_RENDERING) is None
    assert critiques[0].refined_request == f"{request}, {WANTED_DETAILS[0]}"
    assert critiques[2].refined_request == f"{request}, {', '.join(WANTED_DETAILS[:3])}"
    # The same image judged again is the same image: same number, same answer.
    again = parse_critique(rules.answer(Task.T2I, request, picture(2)), Task.T2I)
    assert again.score(Dimension.TEXT_FAITHFULNESS) == 2.0
    # Another request starts from its own first image; details it names count from the start.
    other = parse_critique(rules.answer(Task.T2I, 'a sign saying "OPEN", sharp focus', picture(1)), Task.T2I)
    assert other.score(Dimension.TEXT_FAITHFULNESS) == 2.0 and other.score(Dimension.TEXT_RENDERING) == 2.0


def test_jitter_is_picked_by_the_image_and_scores_stay_in_range() -> None:
    rules = MockCriticRules(base=3.9, jitter=0.1)
    for shade in range(6):
        critique = parse_critique(rules.answer(Task.EDIT, f"make it red {shade}", picture(shade)), Task.EDIT)
        assert len(critique.judgements) == 4
        assert all(1.0 <= j.score <= 4.0 for j in critique.judgements if j.score is not None)
    one = rules.answer(Task.T2I, "x", picture(9))
    assert MockCriticRules(base=3.9, jitter=0.1).answer(Task.T2I, "x", picture(9)) == one


def test_gcr_http_critic_reads_the_server_and_bad_requests_are_refused() -> None:
    async def ask(url: str) -> list:
        critic = load_critic(url, model=MODEL_NAME, max_retries=0, timeout=10)
        async with critic:
            first = await critic.acritique("a red fox", picture(10))
            second = await critic.acritique("a red fox", picture(11))
            edit = await critic.acritique("make the fox blue", picture(12), sources=[picture(13)])
            return [first, second, edit]

    with MockCriticServer() as server:
        first, second, edit = asyncio.run(ask(server.url))
        assert server.requests == 3
        assert normalized_reward(first) < normalized_reward(second)
        assert edit.task is Task.EDIT and edit.score(Dimension.IMAGE_FAITHFULNESS) is not None

        async def wrong_model() -> None:
            critic = load_critic(server.url, model="not-there", max_retries=0, timeout=10)
            async with critic:
                await critic.acritique("a red fox", picture(10))

        with pytest.raises(CriticError):
            asyncio.run(wrong_model())

        body = {
            "model": MODEL_NAME,
            "messages": [{"role": "user", "content": "<current_prompt>a fox</current_prompt>"}],
        }
        request = urllib.request.Request(
            server.url + "/chat/completions", json.dumps(body).encode(), {"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = json.loads(answer.read())["choices"][0]["message"]["content"]
        assert text.endswith(f"<prompt>a fox, {WANTED_DETAILS[0]}</prompt>")


def test_cli_serves_until_interrupted(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gcr", "dev", "mock-critic", "--port", "0"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("scripted mock critic ready: --critic http://127.0.0.1:"), line
        url = line.split("--critic ")[1].split()[0]
        with urllib.request.urlopen(url + "/models", timeout=10) as answer:
            assert json.loads(answer.read())["data"][0]["id"] == MODEL_NAME
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode in (0, 130)
