"""Build the live collaborators of a run (generator, critic, refiner, cache) from a :class:`RunSpec`.

Defaults when a spec names no model:

======== =============================================== ==============================================
task     generator                                       critic (in-process)
======== =============================================== ==============================================
t2i      ``flux-schnell`` (black-forest-labs/FLUX.1-      ``TIGER-Lab/RationalRewards-8B-T2I``
         schnell, Apache-2.0, 4 steps)
edit     ``flux-kontext`` (black-forest-labs/FLUX.1-      ``TIGER-Lab/RationalRewards-8B-Edit``
         Kontext-dev)
======== =============================================== ==============================================

Estimated from parameter counts (not measured here): in bf16 a FLUX.1 pipeline
(12B transformer plus T5-XXL) needs about 34 GB of
accelerator memory and the 8B critic about 17 GB plus its KV cache: about
55-60 GB for the defaults on one GPU (an 80 GB card). With ``offload`` the
generator moves idle components to the CPU; a served critic (``--critic URL``)
takes the critic off the generator's GPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from gcr.agent.cache import ArtifactCache
from gcr.agent.protocols import CriticProtocol
from gcr.agent.refiner import Refiner, make_refiner
from gcr.agent.runner import RunSpec
from gcr.generators.base import Generator
from gcr.judges.base import Judge
from gcr.task import Task

logger = logging.getLogger(__name__)

#: The generator used when none is given, per task (preset aliases of gcr.generators).
DEFAULT_GENERATORS: dict[Task, str] = {Task.T2I: "flux-schnell", Task.EDIT: "flux-kontext"}


def default_generator(task: Task | str) -> str:
    return DEFAULT_GENERATORS[Task.parse(task)]


@dataclass
class Components:
    """The live objects a refine graph is built around."""

    generator: Generator
    critic: CriticProtocol
    refiner: Refiner
    cache: ArtifactCache | None
    #: The cross-judge veto's judge, when the run's settings name one.
    veto: Judge | None = None

    def graph_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`gcr.agent.build_graph`."""
        return {
            "generator": self.generator,
            "critic": self.critic,
            "refiner": self.refiner,
            "cache": self.cache,
            "veto": self.veto,
        }

    async def aclose(self) -> None:
        """Release the critic's connections or model and the LLM refiner's client."""
        for part in (self.critic, self.refiner, self.veto):
            close = getattr(part, "aclose", None)
            if close is not None:
                await close()


def check_defaults(spec: RunSpec, task: Task) -> None:
    """Refuse, before any download, default models this machine cannot run (see :mod:`gcr.doctor`).

    Only the defaults are checked (a model the user named is the user's call), and
    ``--device cpu`` is taken at its word: no GPU is asked for then.
    """
    from gcr.doctor import check_default_models, defaults_plan

    if spec.generator is not None and spec.critic is not None:
        return
    plan = defaults_plan(
        generator=spec.generator,
        critic=spec.critic,
        task=task,
        offload=bool(spec.generator_options.get("offload")),
        device=spec.generator_options.get("device"),
    )
    check_default_models(plan)


def load_components(spec: RunSpec, task: Task | str | None = None) -> Components:
    """Load what ``spec`` names; ``task`` picks the default models (default: edit when the spec has
    source images). The critic comes first: a server that is down fails fast, before any generator
    weights load."""
    from gcr.critic.loading import load_critic
    from gcr.generators.registry import create_generator

    task = Task.parse(task) if task is not None else (Task.EDIT if spec.source_images else Task.T2I)
    check_defaults(spec, task)
    critic = load_critic(spec.critic, model=spec.critic_model, task=task)
    veto = None
    if spec.context.veto_judge:
        from gcr.judges.base import check_judge_task
        from gcr.judges.registry import load_judge

        veto = load_judge(spec.context.veto_judge)
        check_judge_task(veto, task, "the veto judge")
    model = spec.generator or default_generator(task)
    if spec.generator is None:
        logger.info("no generator given; using the default for %s: %s", task.value, model)
    generator = create_generator(spec.generator_kind, model, **spec.generator_options)
    refiner = make_refiner(spec.refiner, url=spec.refiner_url, model=spec.refiner_model)
    cache = ArtifactCache(spec.cache_dir) if spec.use_cache else None
    return Components(generator=generator, critic=critic, refiner=refiner, cache=cache, veto=veto)
