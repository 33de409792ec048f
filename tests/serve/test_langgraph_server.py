"""`langgraph dev` serving this repo's langgraph.json, driven by the LangGraph SDK from the test process.

The server is started with the docs' command and variables (model locations replaced by a
tiny pipeline and a scripted critic), in a scratch folder holding the repo's langgraph.json,
so the in-memory server's `.langgraph_api` state stays out of the checkout. It answers 2 to 7 s
after it starts (benchmarks/serve_startup.py); the models load on the first run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client
from serve_helpers import ROOT, ScriptedCritic, doc_json, doc_shell, free_port, refined

from stubs.critic_server import StubCriticServer

PROMPT = "a red cube"
SIZE = {"steps": 2, "width": 32, "height": 32}
GRAPH = "gcr_refine"


def scores(tf: float, pq: float) -> dict:
    return {"text_faithfulness": tf, "physical_quality": pq, "text_rendering": None}


def test_docs_show_the_repos_langgraph_json():
    import json

    assert doc_json("langgraph-json") == json.loads((ROOT / "langgraph.json").read_text())


@pytest.fixture(scope="module")
def critic() -> Iterator[StubCriticServer]:
    with StubCriticServer() as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_pipeline_dir, critic) -> Iterator[str]:
    work = tmp_path_factory.mktemp("langgraph-dev")
    shutil.copy(ROOT / "langgraph.json", work / "langgraph.json")
    (work / "src").symlink_to(ROOT / "src", target_is_directory=True)
    env, command = doc_shell("langgraph-dev")
    local = {
        "GCR_GENERATOR": str(tiny_pipeline_dir("sd")),
        "GCR_CRITIC": critic.url,
        "GCR_CRITIC_MODEL": "stub-critic",
        "GCR_RUNS_DIR": str(work / "runs"),
    }
    assert {k for k in env if k.startswith("GCR_")} <= set(local), "every model location is replaced"
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    if shutil.which(command[0]) is None:
        command = [sys.executable, "-m", "langgraph_cli", *command[1:]]
    else:
        command[0] = shutil.which(command[0])
    # No artifact cache: the tests share one server, and a critique cached by one would answer the next.
    child = {**os.environ, **env, **local, "GCR_NO_CACHE": "1", "HF_HUB_OFFLINE": "1"}
    log = (work / "server.log").open("w")
    proc = subprocess.Popen(command, cwd=work, env=child, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (work / "server.log").read_text()[-4000:]
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "langgraph dev did not come up in 120 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def stream(client, thread_id: str, **kwargs) -> tuple[list[dict], list[dict]]:
    """(custom events, interrupts) of one streamed run."""
    events: list[dict] = []
    interrupts: list[dict] = []
    async for part in client.runs.stream(thread_id, GRAPH, stream_mode=["custom", "updates"], **kwargs):
        assert part.event != "error", part.data
        if part.event == "custom":
            events.append(part.data)
        elif part.event == "updates" and "__interrupt__" in part.data:
            interrupts.extend(item["value"] for item in part.data["__interrupt__"])
    return events, interrupts


def test_stream_a_refine_run_and_read_the_final_state(server, critic):
    critic.responder = ScriptedCritic(PROMPT, [scores(2, 2), scores(3.5, 3)])
    context = {"max_rounds": 2, "target_reward": None, "patience": 5, **SIZE}

    async def go():
        client = get_client(url=server)
        thread = await client.threads.create()
        events, interrupts = await stream(
            client, thread["thread_id"], input={"prompt": PROMPT}, context=context
        )
        state = await client.threads.get_state(thread["thread_id"])
        return events, interrupts, state

    events, interrupts, state = asyncio.run(go())
    assert not interrupts
    per_round = ["round_started", "candidate_generated", "candidate_scored", "round_finished"]
    assert [e["type"] for e in events] == ["run_started", *per_round, "refined", *per_round, "stopped"]
    finished = [e for e in events if e["type"] == "round_finished"]
    assert [e["best_reward"] for e in finished] == pytest.approx([1 / 3, (3.25 - 1) / 3])
    assert [e["prompt"] for e in finished] == [PROMPT, refined(PROMPT, 1)]
    values = state["values"]
    assert state["next"] == []
    assert values["stop_reason"] == "max_rounds"
    assert values["best"]["round"] == 1 and values["best"]["scores"] == scores(3.5, 3)
    # The state's paths are relative to its run folder.
    assert (Path(values["run_dir"]) / values["best"]["image"]).is_file()
    assert values["summary"]["final_reward"] == pytest.approx(0.75)
    assert (Path(values["run_dir"]) / "report.html").is_file()


def test_resume_an_interactive_run_with_a_command(server, critic):
    critic.responder = ScriptedCritic(PROMPT, [scores(2, 2), scores(3, 3), scores(4, 4)])
    context = {"max_rounds": 3, "target_reward": None, "patience": 5, "interactive": True, **SIZE}
    edited = "a red cube on a white table"

    async def go():
        client = get_client(url=server)
        thread_id = (await client.threads.create())["thread_id"]
        _, first = await stream(client, thread_id, input={"prompt": PROMPT}, context=context)
        paused = await client.threads.get_state(thread_id)
        events, second = await stream(client, thread_id, command={"resume": edited}, context=context)
        _, third = await stream(client, thread_id, command={"resume": "reject"}, context=context)
        final = await client.threads.get_state(thread_id)
        return first, paused, events, second, third, final

    first, paused, events, second, third, final = asyncio.run(go())
    # The run paused for review of the critic's proposal after round 0.
    assert len(first) == 1 and first[0]["next_prompt"] == refined(PROMPT, 1)
    assert paused["next"] == ["review"]
    # The edited prompt drove round 1; the run paused again, then the rejection ended it.
    assert [e["type"] for e in events][:2] == ["reviewed", "round_started"]
    assert events[1]["prompt"] == edited and events[1]["prompt_origin"] == "edited"
    assert len(second) == 1 and second[0]["next_prompt"] == refined(PROMPT, 2)
    assert not third
    values = final["values"]
    assert final["next"] == [] and values["stop_reason"] == "user_rejected"
    assert [r["prompt"] for r in values["rounds"]] == [PROMPT, edited]
    assert values["best"]["round"] == 1 and values["best"]["scores"] == scores(3, 3)
