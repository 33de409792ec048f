"""A step cancelled half-way is run again on resume, not taken as finished.

LangGraph records a node's state update before its conditional edge has chosen the
next node, and saves what a cancelled task wrote so far next to its error. A resume
then took the update as the task's whole output: no next node, and the run "finished"
in the middle (seen as an MCP cancel followed by a resume that stopped after round 0).
The run folder's checkpointer keeps no output of a task that failed.
"""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from gcr.agent.checkpoints import open_checkpointer
from gcr.agent.image_writer import BarrierSqliteSaver, unfinished_task_writes


class Steps(TypedDict, total=False):
    visits: Annotated[list[str], operator.add]
    done: bool


def _graph(route_entered: asyncio.Event, hold_route: list[bool]) -> StateGraph:
    builder = StateGraph(Steps)

    def first(state: Steps) -> Steps:
        return {"visits": ["first"]}

    async def route(state: Steps) -> str:
        route_entered.set()
        if hold_route[0]:
            await asyncio.Event().wait()  # held here until the run is cancelled
        return "second"

    def second(state: Steps) -> Steps:
        return {"visits": ["second"], "done": True}

    builder.add_node("first", first)
    builder.add_node("second", second)
    builder.add_edge(START, "first")
    builder.add_conditional_edges("first", route, ["second"])
    builder.add_edge("second", END)
    return builder


@pytest.mark.parametrize("durability", ["sync", "async"])
def test_a_task_cancelled_between_its_update_and_its_edge_runs_again(tmp_path, durability):
    config = {"configurable": {"thread_id": "t"}}

    async def go():
        entered, hold = asyncio.Event(), [True]
        async with open_checkpointer(tmp_path / "c.sqlite", saver_class=BarrierSqliteSaver) as saver:
            graph = _graph(entered, hold).compile(checkpointer=saver)

            async def stream() -> None:
                # Streamed like gcr.agent.runner does: the tasks run beside the stream, and a
                # cancelled one records what it wrote so far, with its error.
                async for _ in graph.astream(
                    {"visits": []}, config, durability=durability, stream_mode=["custom", "updates"]
                ):
                    pass

            run = asyncio.create_task(stream())
            await asyncio.wait_for(entered.wait(), timeout=30)
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
            stopped = await graph.aget_state(config)
        async with open_checkpointer(tmp_path / "c.sqlite", saver_class=BarrierSqliteSaver) as saver:
            hold[0] = False
            graph = _graph(entered, hold).compile(checkpointer=saver)
            final = await graph.ainvoke(None, config, durability=durability)
            return stopped, final

    stopped, final = asyncio.run(go())
    # The cancelled task is still pending, marked with its error, and none of its output was kept.
    assert [t.name for t in stopped.tasks] == ["first"]
    assert stopped.tasks[0].error is not None
    assert stopped.values["visits"] == []
    # The resume ran it again, and its edge led on to the end.
    assert final == {"visits": ["first", "second"], "done": True}


def test_only_the_record_of_a_failure_is_kept():
    cancelled = asyncio.CancelledError()
    assert unfinished_task_writes([("visits", ["a"]), ("branch:to:b", None)]) == [
        ("visits", ["a"]),
        ("branch:to:b", None),
    ]
    assert unfinished_task_writes(
        [("visits", ["a"]), ("__pregel_tasks", "send"), ("__error__", cancelled)]
    ) == [("__error__", cancelled)]
    # An interactive answer given before the failure is kept, so nobody is asked twice.
    assert unfinished_task_writes([("__resume__", "yes"), ("x", 1), ("__error__", cancelled)]) == [
        ("__resume__", "yes"),
        ("__error__", cancelled),
    ]
