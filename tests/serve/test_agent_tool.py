"""`gcr.agent.as_tool`: examples/react_agent.py runs a prebuilt ReAct agent calling refinement as a tool."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage
from serve_helpers import ROOT, ScriptedCritic, refined

EXAMPLE = ROOT / "examples" / "react_agent.py"
TOPIC = "a lighthouse at dusk"
PROMPT = f"{TOPIC}, detailed illustration"


def scores(tf: float, pq: float) -> dict:
    return {"text_faithfulness": tf, "physical_quality": pq, "text_rendering": None}


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("react_agent_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_react_agent_calls_refinement_as_one_tool(example, tmp_path, scripted_critic, capsys):
    scripted_critic.responder = ScriptedCritic(PROMPT, [scores(2, 3), scores(3.5, 3.5)])
    args = example.parse_args(
        [TOPIC, "--offline", "--critic", scripted_critic.url, "--model", "stub-critic", "--rounds", "2",
         "--runs-dir", str(tmp_path / "runs")]
    )  # fmt: skip
    messages = asyncio.run(example.main(args))
    (tool_message,) = [m for m in messages if isinstance(m, ToolMessage)]
    assert tool_message.name == "refine_image" and tool_message.status == "success"
    answer = json.loads(tool_message.content)
    result = tool_message.artifact
    assert answer["best_reward"] == pytest.approx(2.5 / 3) == result["best_reward"]
    assert answer["best_prompt"] == refined(PROMPT, 1) and answer["rounds"] == 2
    assert [r["prompt"] for r in result["trajectory"]] == [PROMPT, refined(PROMPT, 1)]
    assert result["best_scores"] == scores(3.5, 3.5)
    assert Path(answer["best_image"]).is_file() and Path(answer["run_dir"]).is_relative_to(tmp_path / "runs")
    assert messages[-1].content.startswith("Your image is ready")
    out = capsys.readouterr().out
    assert "tool: best reward 0.833 after 2 round(s)" in out and answer["best_image"] in out


def test_offline_example_runs_with_its_toy_critic(example, tmp_path, capsys):
    args = example.parse_args([TOPIC, "--offline", "--rounds", "1", "--runs-dir", str(tmp_path)])
    messages = asyncio.run(example.main(args))
    (tool_message,) = [m for m in messages if isinstance(m, ToolMessage)]
    assert tool_message.status == "success"
    assert Path(json.loads(tool_message.content)["best_image"]).is_file()


def test_the_model_reads_fixable_mistakes(tmp_path, example):
    from gcr.agent import as_tool

    class NeverCalled:
        model_id = "unused"
        task = "edit"

        def generate(self, request):
            raise AssertionError("no image should be made")

    tool = as_tool(generator=NeverCalled(), critic=example.ToyColourCritic(), runs_dir=tmp_path)

    async def call(args: dict) -> ToolMessage:
        return await tool.ainvoke({"type": "tool_call", "id": "c1", "name": tool.name, "args": args})

    empty = asyncio.run(call({"prompt": " "}))
    assert empty.status == "error" and "prompt is empty" in empty.content
    missing = asyncio.run(call({"prompt": "make it blue", "source_images": [str(tmp_path / "gone.png")]}))
    assert missing.status == "error" and "gone.png" in missing.content
    unsourced = asyncio.run(call({"prompt": "make it blue"}))
    assert unsourced.status == "error" and "source image" in unsourced.content
    zero = asyncio.run(call({"prompt": "a cat", "candidates": 0}))
    assert zero.status == "error" and "candidates" in zero.content
