"""Streaming, human review, subgraph mounting and resuming after a critic outage."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import pydantic
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from refine_harness import Harness

from gcr.agent import RefineContext, RunFolder, RunSpec, run_refine
from gcr.agent.stopping import StopReason
from gcr.errors import CriticUnavailableError


def test_stream_events_arrive_in_round_order(harness):
    graph = harness.builder().compile()

    async def collect() -> list[dict[str, Any]]:
        events = []
        context = harness.context(max_rounds=3, candidates=2)
        async for item in graph.astream({"prompt": "a cat"}, context=context, stream_mode="custom"):
            events.append(item)
        return events

    events = asyncio.run(collect())
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "stopped"
    # Collapse each round's candidate events (their order within a round is free).
    compact = []
    for e in events:
        if e["type"].startswith("candidate_"):
            if compact[-1] != "candidates":
                compact.append("candidates")
        else:
            compact.append(e["type"])
    assert compact == [
        "run_started",
        "round_started", "candidates", "round_finished", "refined",
        "round_started", "candidates", "round_finished", "refined",
        "round_started", "candidates", "round_finished",
        "stopped",
    ]  # fmt: skip
    assert [e["round"] for e in events if e["type"] == "round_finished"] == [0, 1, 2]
    for r in range(3):
        members = [e for e in events if e["type"].startswith("candidate_") and e["round"] == r]
        assert sorted((e["type"], e["index"]) for e in members) == [
            ("candidate_generated", 0), ("candidate_generated", 1),
            ("candidate_scored", 0), ("candidate_scored", 1),
        ]  # fmt: skip
        for i in range(2):  # each candidate is generated before it is scored
            order = [e["type"] for e in members if e["index"] == i]
            assert order == ["candidate_generated", "candidate_scored"]
    finished = [e for e in events if e["type"] == "round_finished"]
    assert [e["best_reward"] for e in finished] == sorted(e["best_reward"] for e in finished)
    stopped = events[-1]
    assert stopped["reason"] == StopReason.MAX_ROUNDS and stopped["rounds"] == 3
    assert stopped["best_prompt"] == "a cat, golden light, sharp focus"


def test_interactive_edit_and_reject_via_command_resume(harness):
    graph = harness.builder().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "review"}}
    context = harness.context(max_rounds=5, interactive=True)

    async def scenario():
        first = await graph.ainvoke({"prompt": "a cat"}, config, context=context)
        request = first["__interrupt__"][0].value
        assert request["proposed"] == "a cat, golden light"
        assert request["next_prompt"] == "a cat, golden light" and request["is_new"]
        # An edit without text is refused, and the same question can be answered again.
        with pytest.raises(pydantic.ValidationError):
            await graph.ainvoke(Command(resume={"action": "edit", "prompt": "  "}), config, context=context)
        second = await graph.ainvoke(
            Command(resume={"action": "edit", "prompt": "a cat, sharp focus"}), config, context=context
        )
        request = second["__interrupt__"][0].value
        assert request["current_prompt"] == "a cat, sharp focus"
        assert request["proposed"] == "a cat, sharp focus, golden light"
        return await graph.ainvoke(Command(resume="reject"), config, context=context)

    out = asyncio.run(scenario())
    assert [r["prompt"] for r in out["rounds"]] == ["a cat", "a cat, sharp focus"]
    assert [r["prompt_origin"] for r in out["rounds"]] == ["user", "edited"]
    assert out["rounds"][0]["review"] == {"action": "edit", "prompt": "a cat, sharp focus"}
    assert out["rounds"][1]["review"] == {"action": "reject", "prompt": None}
    assert out["stop_reason"] == StopReason.USER_REJECTED
    assert harness.inner.calls == 2


def test_interactive_accept_of_a_repeated_prompt_stops(tmp_path):
    from stubs.prompt_aware_critic import PromptAwareScript

    harness = Harness(tmp_path, PromptAwareScript(wanted=[]))  # the critic never asks for more
    graph = harness.builder().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    context = harness.context(max_rounds=5, interactive=True)

    async def scenario():
        first = await graph.ainvoke({"prompt": "a cat"}, config, context=context)
        assert first["__interrupt__"][0].value["is_new"] is False
        return await graph.ainvoke(Command(resume="accept"), config, context=context)

    out = asyncio.run(scenario())
    assert out["stop_reason"] == StopReason.NOTHING_NEW
    assert "already tried in round 0" in out["stop_detail"]


class HostState(TypedDict):
    prompt: str
    topic: NotRequired[str]
    run_dir: NotRequired[str]
    best: NotRequired[dict | None]
    rounds: NotRequired[list]
    stop_reason: NotRequired[str | None]
    stop_detail: NotRequired[str | None]
    summary: NotRequired[dict | None]
    caption: NotRequired[str]


def host_graph(harness: Harness, defaults: RefineContext):
    def write_prompt(state: HostState) -> dict:
        return {"prompt": f"a {state['topic']}"}

    def caption(state: HostState) -> dict:
        return {"caption": f"{state['best']['prompt']} ({state['stop_reason']})"}

    refine = harness.builder(defaults=defaults).compile()
    host = StateGraph(HostState)
    host.add_node("write_prompt", write_prompt)
    host.add_node("refine", refine)
    host.add_node("caption", caption)
    host.add_edge(START, "write_prompt")
    host.add_edge("write_prompt", "refine")
    host.add_edge("refine", "caption")
    host.add_edge("caption", END)
    return host.compile(checkpointer=InMemorySaver())


def test_mounted_as_a_subgraph_in_a_host_graph_with_its_own_checkpointer(harness, tmp_path):
    defaults = RefineContext(run_dir=str(tmp_path / "hosted"), max_rounds=2, target_reward=None)
    host = host_graph(harness, defaults)
    config = {"configurable": {"thread_id": "host-1"}}
    out = asyncio.run(host.ainvoke({"prompt": "", "topic": "cat"}, config))
    assert out["caption"] == "a cat, golden light (max_rounds)"
    assert (Path(out["run_dir"]) / out["best"]["image"]).is_file()
    assert out["run_dir"] == str((tmp_path / "hosted").resolve())
    assert len(out["rounds"]) == 2
    # The host's checkpointer holds the finished thread.
    snapshot = asyncio.run(host.aget_state(config))
    assert snapshot.next == () and snapshot.values["caption"] == out["caption"]


def test_interactive_subgraph_interrupt_surfaces_in_the_host_and_resumes(harness, tmp_path):
    defaults = RefineContext(
        run_dir=str(tmp_path / "hosted"), max_rounds=3, target_reward=None, interactive=True
    )
    host = host_graph(harness, defaults)
    config = {"configurable": {"thread_id": "host-2"}}

    async def scenario():
        first = await host.ainvoke({"prompt": "", "topic": "cat"}, config)
        assert first["__interrupt__"][0].value["proposed"] == "a cat, golden light"
        second = await host.ainvoke(Command(resume="accept"), config)
        assert second["__interrupt__"][0].value["proposed"] == "a cat, golden light, sharp focus"
        return await host.ainvoke(Command(resume="accept"), config)

    out = asyncio.run(scenario())
    assert out["caption"] == "a cat, golden light, sharp focus (max_rounds)"
    assert harness.inner.calls == 3  # no round was generated twice across the pauses


def test_resume_after_a_critic_outage_regenerates_nothing(harness, tmp_path):
    harness.critic.fail_after = 3  # round 0: 2 critiques; round 1: one succeeds, then the critic is down
    builder = harness.builder()
    folder = RunFolder(tmp_path / "outage")
    spec = RunSpec(prompt="a cat", context={"max_rounds": 3, "candidates": 2, "target_reward": None})
    events: list[dict] = []

    with pytest.raises(CriticUnavailableError):
        asyncio.run(run_refine(builder, folder, spec, on_event=events.append))
    assert harness.inner.calls == 4  # round 0 and round 1 were generated
    assert (folder.path / "run.json").is_file() and (folder.path / "checkpoints.sqlite").is_file()
    assert [e["round"] for e in events if e["type"] == "round_finished"] == [0]

    harness.critic.fail_after = None  # the critic is back
    critic_calls = harness.critic.calls
    resumed = asyncio.run(run_refine(builder, folder, RunSpec.load(folder), resume=True))
    assert resumed.finished
    values = resumed.values
    assert values["stop_reason"] == StopReason.MAX_ROUNDS
    assert len(values["rounds"]) == 3
    assert harness.inner.calls == 6  # only round 2 was new: nothing generated twice
    # Round 1's surviving critique was kept: only its failed candidate and round 2 were critiqued.
    assert harness.critic.calls - critic_calls == 1 + 2
    assert (folder.path / "summary.json").is_file() and (folder.path / "report.html").is_file()

    again = asyncio.run(run_refine(builder, folder, RunSpec.load(folder), resume=True))
    assert again.finished and again.values["summary"] == values["summary"]
    assert harness.inner.calls == 6


def test_run_refine_refuses_to_start_over_an_existing_run(harness, tmp_path):
    from gcr.errors import RunError

    folder = RunFolder(tmp_path / "r")
    spec = RunSpec(prompt="a cat", context={"max_rounds": 1})
    asyncio.run(run_refine(harness.builder(), folder, spec))
    with pytest.raises(RunError, match="already holds a run"):
        asyncio.run(run_refine(harness.builder(), folder, spec))


def test_run_refine_answers_reviews_with_a_handler(harness, tmp_path):
    folder = RunFolder(tmp_path / "r")
    spec = RunSpec(prompt="a cat", context={"max_rounds": 4, "interactive": True, "target_reward": None})
    seen = []

    def review(request):
        seen.append(request["proposed"])
        return "accept" if len(seen) == 1 else {"action": "reject"}

    outcome = asyncio.run(run_refine(harness.builder(), folder, spec, on_review=review))
    assert outcome.finished and outcome.values["stop_reason"] == StopReason.USER_REJECTED
    assert seen == ["a cat, golden light", "a cat, golden light, sharp focus"]

    # Without a handler the run pauses, and a resume with a handler answers the pending question.
    folder2 = RunFolder(tmp_path / "r2")
    paused = asyncio.run(run_refine(harness.builder(), folder2, spec))
    assert not paused.finished and paused.pending_review["proposed"] == "a cat, golden light"
    done = asyncio.run(
        run_refine(harness.builder(), folder2, spec, resume=True, on_review=lambda r: "reject")
    )
    assert done.finished and done.values["stop_reason"] == StopReason.USER_REJECTED


class _Killed(BaseException):
    """Stands for the process dying (kill -9) between two writes to the checkpoint store."""


def test_resume_after_a_death_between_task_writes_and_checkpoint(harness, tmp_path, monkeypatch):
    """A task's writes were saved but its superstep's checkpoint was not: the run is not over.

    LangGraph's ``StateSnapshot.next`` leaves out tasks whose writes are saved, so it is empty
    in this state; treating that as "finished" once recorded a half-done run as complete.
    """
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    real_aput = AsyncSqliteSaver.aput

    async def dying_aput(self, config, checkpoint, metadata, new_versions):
        # The first checkpoint after round 1's image was generated: the superstep that ran it.
        if harness.inner.calls == 2:
            raise _Killed
        return await real_aput(self, config, checkpoint, metadata, new_versions)

    builder = harness.builder()
    folder = RunFolder(tmp_path / "killed")
    spec = RunSpec(prompt="a cat", context={"max_rounds": 3, "candidates": 1, "target_reward": None})
    monkeypatch.setattr(AsyncSqliteSaver, "aput", dying_aput)
    with pytest.raises(_Killed):
        # Synchronous checkpoints: the "death" must come right after round 1's generation
        # superstep (with background saves the run may already be further along).
        asyncio.run(run_refine(builder, folder, spec, durability="sync"))
    monkeypatch.setattr(AsyncSqliteSaver, "aput", real_aput)
    assert harness.inner.calls == 2  # round 0 and round 1 were generated before the "death"

    resumed = asyncio.run(run_refine(builder, folder, RunSpec.load(folder), resume=True))
    assert resumed.finished
    assert resumed.values["stop_reason"] == StopReason.MAX_ROUNDS
    assert len(resumed.values["rounds"]) == 3
    assert harness.inner.calls == 3  # round 1's saved generation was not redone


def test_no_checkpoint_is_saved_while_an_image_it_may_name_is_incomplete(harness, tmp_path, monkeypatch):
    """Run-folder images are written behind the critical path, but never behind a checkpoint."""
    import time

    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    import gcr.agent.image_writer as image_writer

    real_write, real_aput, real_aput_writes = (
        image_writer.write_file_atomically,
        AsyncSqliteSaver.aput,
        AsyncSqliteSaver.aput_writes,
    )
    saves = {"n": 0, "named": 0, "missing": []}
    pattern = re.compile(r"[^'\"\s]*rounds/r\d\d/c\d\d\.png")

    def slow_write(data, target):
        time.sleep(0.05)  # a slow disk: the graph runs ahead of the writer
        real_write(data, target)

    def check(saved: object) -> None:
        saves["n"] += 1
        for path in set(pattern.findall(repr(saved))):
            saves["named"] += 1
            # State paths are relative to the run folder (joining keeps an absolute one as it is).
            if not (tmp_path / "run" / path).is_file():  # files appear only whole (written, then renamed)
                saves["missing"].append(path)

    async def aput(self, config, checkpoint, metadata, new_versions):
        check(checkpoint)
        return await real_aput(self, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config, writes, task_id, task_path=""):
        check(writes)
        return await real_aput_writes(self, config, writes, task_id, task_path)

    monkeypatch.setattr(image_writer, "write_file_atomically", slow_write)
    monkeypatch.setattr(AsyncSqliteSaver, "aput", aput)
    monkeypatch.setattr(AsyncSqliteSaver, "aput_writes", aput_writes)
    folder = RunFolder(tmp_path / "run")
    spec = RunSpec(prompt="a cat", context={"max_rounds": 3, "candidates": 2, "target_reward": None})
    done = asyncio.run(run_refine(harness.builder(), folder, spec))
    assert done.finished and saves["n"] > 0 and saves["named"] > 0
    assert saves["missing"] == []  # no checkpoint named an image before it was complete on disk
    for candidate in done.values["candidates"]:
        assert (folder.path / candidate["image"]).is_file()
