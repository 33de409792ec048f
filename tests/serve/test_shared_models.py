"""SharedModels (one load per process, retried after a failure) and the run folders servers create."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from PIL import Image

from gcr.agent.components import Components
from gcr.agent.refiner import CritiqueRefiner
from gcr.agent.runner import RunSpec
from gcr.errors import CriticUnavailableError
from gcr.generators.base import GenerationRequest, GenerationResult
from gcr.serve.models import LockedGenerator, SharedModels
from gcr.task import Task


class CountingGenerator:
    """Records how many generate calls overlap."""

    model_id = "counting"
    task = Task.T2I

    def __init__(self) -> None:
        self.active = 0
        self.most = 0
        self._lock = threading.Lock()

    def generate(self, request: GenerationRequest) -> GenerationResult:
        with self._lock:
            self.active += 1
            self.most = max(self.most, self.active)
        time.sleep(0.05)
        with self._lock:
            self.active -= 1
        return GenerationResult(images=[Image.new("RGB", (4, 4))], seeds=[request.seed], model_id="counting",
                                params={})  # fmt: skip


class SilentCritic:
    model_id = "silent"

    def __init__(self) -> None:
        self.closed = False

    def cache_identity(self, mode, task) -> str:
        return "silent"

    async def acritique(self, prompt, image, *, sources=(), task=None):
        raise AssertionError("not asked in these tests")

    async def aclose(self) -> None:
        self.closed = True


def test_concurrent_first_calls_share_one_load_and_close_it():
    loads: list[float] = []
    critic = SilentCritic()

    def loader(spec, task):
        loads.append(time.perf_counter())
        time.sleep(0.2)
        return Components(generator=CountingGenerator(), critic=critic, refiner=CritiqueRefiner(), cache=None)

    models = SharedModels(RunSpec(prompt=""), "t2i", loader=loader)

    async def go():
        got = await asyncio.gather(*(models.get() for _ in range(5)))
        again = await models.get()
        await models.aclose()
        return got, again

    got, again = asyncio.run(go())
    assert len(loads) == 1 and models.loads == 1
    assert all(g is got[0] for g in got) and again is got[0]
    assert isinstance(got[0].generator, LockedGenerator) and got[0].generator.model_id == "counting"
    assert critic.closed


def test_a_failed_load_is_retried_by_the_next_call():
    attempts = []

    def loader(spec, task):
        attempts.append(task)
        if len(attempts) == 1:
            raise CriticUnavailableError("critic server at http://x/v1 is down")
        return Components(generator=CountingGenerator(), critic=SilentCritic(), refiner=CritiqueRefiner(),
                          cache=None)  # fmt: skip

    models = SharedModels(RunSpec(prompt=""), "t2i", loader=loader)

    async def go():
        with pytest.raises(CriticUnavailableError, match="is down"):
            await models.get()
        return await models.get()

    assert asyncio.run(go()).critic.model_id == "silent" and len(attempts) == 2


def test_the_locked_generator_runs_one_request_at_a_time():
    inner = CountingGenerator()
    locked = LockedGenerator(inner)
    threads = [threading.Thread(target=locked.generate, args=(GenerationRequest(prompt="x", seed=i),))
               for i in range(4)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inner.most == 1 and locked.task is Task.T2I


def test_an_unwritable_runs_folder_is_a_clear_error(tmp_path):
    from gcr.agent.outcome import new_run_folder
    from gcr.errors import RunError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RunError, match="GCR_RUNS_DIR"):
        new_run_folder("a cat", blocker / "runs")
    first = new_run_folder("a cat", tmp_path / "runs")
    second = new_run_folder("a cat", tmp_path / "runs")
    assert first.path != second.path and first.path.is_dir() and second.path.is_dir()
