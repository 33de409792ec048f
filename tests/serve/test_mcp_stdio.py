"""`gcr serve mcp` for real: the SDK's own client starts the server from the docs' config over stdio.

Tiny random diffusers pipeline, scripted critic server; the client checks what comes back
(decoded images, the scripted scores, the trajectory, progress notifications, cancellation).
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import shutil
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from PIL import Image
from serve_helpers import ScriptedCritic, child_env, doc_json, refined

PROMPT = "a red cube"
SIZE = {"steps": 2, "width": 32, "height": 32}
NA = {"text_rendering": None}


def scores(tf: float, pq: float) -> dict:
    return {"text_faithfulness": tf, "physical_quality": pq, **NA}


def server_params(tmp_path: Path, pipeline: Path, critic_url: str) -> StdioServerParameters:
    """The docs' mcpServers entry, with its model locations pointed at the tiny offline ones."""
    entry = doc_json("mcp-client-config")["mcpServers"]["gcr"]
    local = {
        "GCR_GENERATOR": str(pipeline),
        "GCR_CRITIC": critic_url,
        "GCR_CRITIC_MODEL": "stub-critic",
        "GCR_RUNS_DIR": str(tmp_path / "runs"),
        "GCR_CACHE_DIR": str(tmp_path / "cache"),  # not the user's cache: every test starts cold
    }
    assert set(entry["env"]) <= set(local), "every model location in the snippet is replaced"
    command = shutil.which(entry["command"])
    args = list(entry["args"])
    if command is None:  # not installed as a console script: the same CLI through the module
        command, args = sys.executable, ["-m", "gcr", *args]
    return StdioServerParameters(
        command=command, args=args, env=child_env({**entry["env"], **local}), cwd=str(tmp_path)
    )


@asynccontextmanager
async def session(params: StdioServerParameters, errlog: Path) -> AsyncIterator[ClientSession]:
    with errlog.open("w") as err:
        async with stdio_client(params, errlog=err) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            yield s


def decode(block) -> Image.Image:
    assert block.type == "image" and block.mime_type == "image/png"
    return Image.open(io.BytesIO(base64.b64decode(block.data)))


def data_url(path: str) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def test_refine_critique_generate_over_stdio(tmp_path, tiny_pipeline_dir, scripted_critic):
    script = ScriptedCritic(
        PROMPT,
        [scores(2, 2), scores(3, 3), scores(3.5, 4), scores(2.5, 3)],
        pair=(scores(3, 3), scores(2, 2)),
    )
    scripted_critic.responder = script
    params = server_params(tmp_path, tiny_pipeline_dir("sd"), scripted_critic.url)
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def go():
        async with session(params, tmp_path / "server.err") as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert set(tools) == {"refine_image", "critique_image", "generate_image"}
            assert "best_image" in tools["refine_image"].output_schema["properties"]
            refine = await s.call_tool(
                "refine_image",
                {"prompt": PROMPT, "max_rounds": 3, "target_reward": None, "patience": 5, **SIZE},
                progress_callback=on_progress,
            )
            best = refine.structured_content["best_image"]
            first = refine.structured_content["trajectory"][0]
            one = await s.call_tool("critique_image", {"prompt": PROMPT, "image": data_url(best)})
            pair = await s.call_tool(
                "critique_image", {"prompt": PROMPT, "image": best, "other_image": first_image(best)}
            )
            made = await s.call_tool("generate_image", {"prompt": PROMPT, "num_images": 2, "seed": 5, **SIZE})
            empty = await s.call_tool("refine_image", {"prompt": "  "})
            nowhere = str(tmp_path / "no.png")
            missing = await s.call_tool("critique_image", {"prompt": PROMPT, "image": nowhere})
            too_many = await s.call_tool("refine_image", {"prompt": PROMPT, "max_rounds": 99})
            elsewhere = await s.call_tool("refine_image", {"prompt": PROMPT, "resume_run_dir": str(tmp_path)})
            sourced = {"prompt": "make it blue", "source_images": [data_url(best)]}
            edit = await s.call_tool("refine_image", sourced)
            return refine, first, one, pair, made, (empty, missing, too_many, elsewhere, edit)

    refine, first, one, pair, made, mistakes = asyncio.run(go())
    empty, missing, too_many, elsewhere, edit = mistakes

    # refine_image: the best image of the run, its scores and the whole trajectory.
    assert not refine.is_error, refine.content
    result = refine.structured_content
    assert result["best_round"] == 2 and result["best_reward"] == pytest.approx((3.75 - 1) / 3)
    assert result["best_scores"] == scores(3.5, 4)
    assert result["start_reward"] == pytest.approx(1 / 3)
    assert [r["prompt"] for r in result["trajectory"]] == [PROMPT, refined(PROMPT, 1), refined(PROMPT, 2)]
    assert [r["best_reward"] for r in result["trajectory"]] == pytest.approx([1 / 3, 2 / 3, 2.75 / 3])
    assert first["prompt_origin"] == "user" and result["stop_reason"] == "max_rounds"
    image = decode(refine.content[0])
    assert image.size == (32, 32)
    assert base64.b64decode(refine.content[0].data) == Path(result["best_image"]).read_bytes()
    assert Path(result["best_image"]).is_relative_to(tmp_path / "runs")
    assert (Path(result["run_dir"]) / "summary.json").is_file()
    # One progress notification per round, in order, carrying the round's reward.
    assert [(p[0], p[1]) for p in progress] == [(1, 3), (2, 3), (3, 3)]
    assert "0.333" in progress[0][2] and "0.917" in progress[2][2]

    # critique_image: the typed critique of one image (sent as a data URL) and of a pair.
    assert not one.is_error, one.content
    critique = one.structured_content
    assert critique["mode"] == "pointwise" and critique["critic"] == "stub-critic"
    got = {j["dimension"]: j["score"] for j in critique["critique"]["judgements"]}
    assert got == scores(2.5, 3) and critique["reward"] == pytest.approx((2.75 - 1) / 3)
    assert critique["critique"]["refined_request"] == refined(PROMPT, 4)
    compared = pair.structured_content
    assert compared["mode"] == "pairwise" and compared["preference"] == "A"
    assert compared["totals"] == [3 + 3 + 2.5, 2 + 2 + 2.5]

    # generate_image: two images, saved, returned as image content.
    assert not made.is_error, made.content
    gen = made.structured_content
    assert gen["seeds"] == [5, 6] and len(gen["images"]) == 2
    for block, path in zip(made.content[:2], gen["images"], strict=True):
        assert decode(block).size == (32, 32)
        assert base64.b64decode(block.data) == Path(path).read_bytes()

    # Fixable mistakes come back as tool errors that say what to fix.
    assert empty.is_error and "prompt is empty" in empty.content[0].text
    assert missing.is_error and "not found" in missing.content[0].text
    assert too_many.is_error and "max_rounds" in too_many.content[0].text
    assert elsewhere.is_error and "not a run folder of this server" in elsewhere.content[0].text
    assert edit.is_error and "takes no source image" in edit.content[0].text  # a text-to-image server

    # The generator and the critic were loaded once for all these calls.
    log = (tmp_path / "server.err").read_text()
    assert log.count("loaded generator") == 1, log


def first_image(best: str) -> str:
    """Round 0's image of the run that made ``best`` (rounds/r02/c00.png → rounds/r00/c00.png)."""
    path = Path(best)
    return str(path.parents[1] / "r00" / path.name)


def test_cancel_stops_the_run_and_resume_finishes_it(tmp_path, tiny_pipeline_dir, scripted_critic):
    script = ScriptedCritic(PROMPT, [scores(2, 2), scores(2.5, 2.5), scores(3, 3), scores(3.5, 3.5)])
    script.delay = 0.5
    scripted_critic.responder = script
    params = server_params(tmp_path, tiny_pipeline_dir("sd"), scripted_critic.url)
    args = {"prompt": PROMPT, "max_rounds": 4, "target_reward": None, "patience": 5, **SIZE}

    async def go():
        async with session(params, tmp_path / "server.err") as s:
            first_round = asyncio.Event()

            async def on_progress(done, total, message):
                first_round.set()

            call = asyncio.create_task(s.call_tool("refine_image", args, progress_callback=on_progress))
            await asyncio.wait_for(first_round.wait(), timeout=120)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            asked_at_cancel = script.pointwise
            await asyncio.sleep(3 * script.delay + 1.5)  # time for two more rounds, had it kept going
            asked_later = script.pointwise
            (run_dir,) = (tmp_path / "runs").iterdir()
            # The cancelled run let go of its checkpoint database: a writer gets it at once.
            db = sqlite3.connect(run_dir / "checkpoints.sqlite", timeout=0)
            db.execute("BEGIN IMMEDIATE")
            db.rollback()
            db.close()
            # The server still answers, and continues the run where it stopped.
            script.delay = 0.0
            resumed = await s.call_tool("refine_image", {"prompt": "", "resume_run_dir": str(run_dir)})
            return asked_at_cancel, asked_later, run_dir, resumed

    asked_at_cancel, asked_later, run_dir, resumed = asyncio.run(go())
    assert asked_later <= asked_at_cancel + 1, "the cancelled run kept asking the critic"
    assert not resumed.is_error, resumed.content
    result = resumed.structured_content
    assert result["run_dir"] == str(run_dir) and result["finished"]
    # On failure, say how the resumed run ended and what the server logged (this test failed twice
    # in full-suite runs on a heavily loaded machine and never alone; see the issue-16 note).
    log = (tmp_path / "server.err").read_text()[-4000:]
    assert len(result["trajectory"]) == 4, (result.get("stop_reason"), result["trajectory"], log)
    assert result["trajectory"][0]["prompt"] == PROMPT
    # Round 0 ran before the cancel and is kept; the round cut short is asked again on resume
    # (so it may take the next scripted score), and the run ends on the best scripted image.
    assert result["trajectory"][0]["best_reward"] == pytest.approx(1 / 3)
    assert result["best_scores"] == scores(3.5, 3.5)



def test_streamable_http_serves_the_same_tools_and_guards_paths(tmp_path, tiny_pipeline_dir, scripted_critic):
    import subprocess

    from mcp import Client
    from serve_helpers import free_port

    scripted_critic.responder = ScriptedCritic(PROMPT, [scores(3, 2)])
    params = server_params(tmp_path, tiny_pipeline_dir("sd"), scripted_critic.url)
    port = free_port()
    inside = tmp_path / "runs" / "uploads" / "probe.png"
    inside.parent.mkdir(parents=True)
    Image.new("RGB", (32, 32), (200, 30, 30)).save(inside)
    outside = tmp_path / "elsewhere.png"
    Image.new("RGB", (32, 32), (30, 30, 200)).save(outside)
    args = [*params.args, "--transport", "streamable-http", "--port", str(port)]
    with (tmp_path / "server.err").open("w") as err:
        proc = subprocess.Popen([params.command, *args], env={**os.environ, **params.env}, cwd=params.cwd,
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
    try:
        wait_for_port(port, proc, tmp_path / "server.err")

        async def go():
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                ok = await client.call_tool("critique_image", {"prompt": PROMPT, "image": str(inside)})
                refused = await client.call_tool("critique_image", {"prompt": PROMPT, "image": str(outside)})
                return names, ok, refused

        names, ok, refused = asyncio.run(go())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert names == {"refine_image", "critique_image", "generate_image"}
    assert not ok.is_error, ok.content
    assert ok.structured_content["reward"] == pytest.approx((2.5 - 1) / 3)
    assert refused.is_error and "outside the folders this server reads images from" in refused.content[0].text


def wait_for_port(port: int, proc, log: Path, timeout: float = 120) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log.read_text()[-4000:]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline, f"the server did not listen on {port} within {timeout} s"
        time.sleep(0.2)
