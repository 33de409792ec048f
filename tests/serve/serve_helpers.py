"""Helpers of the server tests: the docs' snippets, a scripted critic, free ports, child environments."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import threading
from collections import deque
from pathlib import Path

from gcr.task import Task
from stubs.critic_server import RecordedRequest, StubReply
from stubs.eval_critic_server import pairwise_answer, pointwise_answer

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "embedding.md"


def doc_snippet(name: str) -> str:
    """The fenced code block right after ``<!-- snippet: NAME -->`` in docs/embedding.md."""
    text = DOC.read_text("utf-8")
    match = re.search(rf"<!-- snippet: {re.escape(name)} -->\s*```\w*\n(.*?)\n```", text, re.S)
    assert match, f"docs/embedding.md has no snippet {name!r}"
    return match.group(1)


def doc_json(name: str) -> dict:
    return json.loads(doc_snippet(name))


def doc_shell(name: str) -> tuple[dict[str, str], list[str]]:
    """A shell snippet of ``export K=V ...`` lines and one command: (variables, command words)."""
    env: dict[str, str] = {}
    command: list[str] = []
    for line in doc_snippet(name).splitlines():
        words = shlex.split(line)
        if words and words[0] == "export":
            for item in words[1:]:
                key, _, value = item.partition("=")
                env[key] = value
        elif words:
            assert not command, "the snippet runs one command"
            command = words
    return env, command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """Variables a server subprocess needs besides the snippet's: this checkout's sources, offline hubs."""
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return {**env, **extra}


def refined(prompt: str, n: int) -> str:
    """The refined request the scripted critic proposes after its ``n``-th critique."""
    return f"{prompt}, sharper edges, take {n}"


class ScriptedCritic:
    """Answers pointwise requests from a queue of scores (the last repeats), pairwise ones from a pair.

    Every answer proposes ``refined(prompt, n)`` as the next request, so each round's prompt
    is known. ``delay`` makes each answer slow (a busy critic).
    """

    def __init__(self, prompt: str, scores: list[dict], pair: tuple[dict, dict] | None = None) -> None:
        self.prompt = prompt
        self.scores = deque(scores)
        self.pair = pair
        self.delay = 0.0
        self.pointwise = 0
        self._lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> StubReply:
        if len(request.image_urls()) >= 2 and self.pair is not None:
            return StubReply.ok(pairwise_answer(Task.T2I, *self.pair), self.delay)
        with self._lock:
            self.pointwise += 1
            scores = self.scores.popleft() if len(self.scores) > 1 else self.scores[0]
            n = self.pointwise
        text = pointwise_answer(Task.T2I, scores).replace(
            "The same scene, described more precisely.", refined(self.prompt, n)
        )
        return StubReply.ok(text, self.delay)
