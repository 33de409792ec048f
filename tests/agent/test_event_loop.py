"""The graph's async nodes keep file work off the event loop.

LangGraph's development server (``langgraph dev``) runs graphs under blockbuster, which
raises on any blocking call made on the event loop thread; a host application's loop
would stall on them the same way. Here the graph runs under blockbuster directly.
"""

from __future__ import annotations

import asyncio

import pytest
from PIL import Image
from refine_harness import Harness

from gcr.task import Task

blockbuster = pytest.importorskip("blockbuster")


@pytest.mark.parametrize("task", [Task.T2I, Task.EDIT])
def test_a_run_makes_no_blocking_call_on_the_event_loop(tmp_path, task):
    harness = Harness(tmp_path, task=task)
    sources = []
    if task is Task.EDIT:
        source = tmp_path / "source.png"
        Image.new("RGB", (16, 16), (30, 60, 90)).save(source)
        sources = [str(source)]
    graph = harness.builder().compile()
    inputs = {"prompt": "a red cube", "source_images": sources}

    async def twice():
        # The second run finds every image and critique in the cache: those reads count too.
        first = await graph.ainvoke(inputs, context=harness.context(max_rounds=2, candidates=2))
        made, asked = harness.inner.calls, harness.critic.calls
        again = await graph.ainvoke(inputs, context=harness.context(max_rounds=2, candidates=2))
        return first, again, (made, asked)

    with blockbuster.blockbuster_ctx():
        first, again, after_first = asyncio.run(twice())
    assert len(first["rounds"]) == 2 and first["stop_reason"]
    assert len(again["rounds"]) == 2
    assert (harness.inner.calls, harness.critic.calls) == after_first  # all from the cache
