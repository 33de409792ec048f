"""The Generate-Critique-Refine graph and its public builder.

::

    START → start → launch ══Send×N══▶ generate ──Send──▶ critique ──▶ decide
                      ▲                                                   │
                      │                                 stop? ── yes ──▶ finish → END
                      │                                                   │ no
                      └──────────── (review, interactive) ◀──────────── refine

:func:`build_graph` returns the *uncompiled* :class:`~langgraph.graph.StateGraph`,
so the caller chooses how to compile it: with its own checkpointer, as a
subgraph node of a larger graph, or plain. Live objects (generator, critic,
refiner) are bound here; run settings come from the :class:`RefineContext`
passed at invocation (``graph.ainvoke(inputs, context=RefineContext(...))``).

The graph is asynchronous (critiques and LLM refinements are awaited): run it
with ``ainvoke``/``astream``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from langgraph.graph import END, START, StateGraph

from gcr.agent.cache import ArtifactCache
from gcr.agent.context import RefineContext
from gcr.agent.guard import PromptGuard
from gcr.agent.nodes.base import NodeDeps
from gcr.agent.nodes.critique import make_critique
from gcr.agent.nodes.decide import make_decide
from gcr.agent.nodes.finish import make_finish
from gcr.agent.nodes.generate import make_generate
from gcr.agent.nodes.refine import make_refine
from gcr.agent.nodes.review import make_review
from gcr.agent.nodes.start import dispatch, make_launch, make_start
from gcr.agent.protocols import CriticProtocol
from gcr.agent.refiner import CritiqueRefiner, Refiner
from gcr.agent.state import RefineInput, RefineOutput, RefineState
from gcr.agent.stopping import StoppingPolicy
from gcr.agent.veto import Veto
from gcr.errors import ConfigError
from gcr.generators.base import Generator
from gcr.judges.base import Judge

#: The name a compiled graph gets by default (shown by LangGraph tooling).
GRAPH_NAME = "gcr_refine"


def route_after_decide(state: RefineState) -> Literal["refine", "finish"]:
    """Stop when the policy gave a reason, else refine."""
    return "finish" if state.get("stop_reason") else "refine"


def route_after_refine(state: RefineState) -> Literal["review", "launch", "finish"]:
    """Stop, ask a person (interactive mode), or start the next round."""
    if state.get("stop_reason"):
        return "finish"
    return "review" if state.get("pending") else "launch"


def route_after_review(state: RefineState) -> Literal["launch", "finish"]:
    return "finish" if state.get("stop_reason") else "launch"


def build_graph(
    *,
    generator: Generator,
    critic: CriticProtocol,
    refiner: Refiner | None = None,
    guard: PromptGuard | None = None,
    stopping: StoppingPolicy | None = None,
    cache: ArtifactCache | None = None,
    defaults: RefineContext | None = None,
    max_parallel_generations: int = 1,
    veto: Judge | None = None,
) -> StateGraph[RefineState, RefineContext, RefineInput, RefineOutput]:
    """Build the refine graph around live collaborators.

    Args:
        generator: makes the images (its ``task`` decides text-to-image or editing).
        critic: judges each image (``gcr.critic.load_critic(...)`` or any
            :class:`~gcr.agent.protocols.CriticProtocol`).
        refiner: proposes the next prompt; default :class:`CritiqueRefiner` (the
            critic's own refined request).
        guard: checks each proposal keeps the user's intent; default :class:`PromptGuard()`.
        stopping: a custom :class:`StoppingPolicy`; default: the rules in the run's
            :class:`RefineContext` (target reward, plateau, budgets, ...).
        cache: content-keyed cache of images and critiques; ``None`` disables it.
        defaults: settings used when the run's context is not a ``RefineContext``
            (e.g. when mounted in a host graph that has its own context schema).
        max_parallel_generations: generator calls allowed at once. Keep 1 for a local
            diffusers pipeline (not thread-safe); raise it for a hosted image API.
        veto: a :class:`~gcr.judges.base.Judge` whose score may not fall by more than the run's
            ``veto_drop`` when a new best image replaces the current one (see :mod:`gcr.agent.veto`);
            its verdicts are cached next to the critiques.
    """
    if max_parallel_generations < 1:
        raise ConfigError(f"max_parallel_generations must be at least 1 (got {max_parallel_generations})")
    deps = NodeDeps(
        generator=generator,
        critic=critic,
        refiner=refiner if refiner is not None else CritiqueRefiner(),
        guard=guard if guard is not None else PromptGuard(),
        stopping=stopping,
        cache=cache,
        defaults=defaults if defaults is not None else RefineContext(),
        veto=None if veto is None else Veto(veto, cache_dir=None if cache is None else cache.root),
        generator_executor=ThreadPoolExecutor(
            max_workers=max_parallel_generations, thread_name_prefix="gcr-generator"
        ),
    )
    builder = StateGraph(
        RefineState, context_schema=RefineContext, input_schema=RefineInput, output_schema=RefineOutput
    )
    builder.add_node("start", make_start(deps))
    builder.add_node("launch", make_launch(deps))
    # generate and critique receive Send payloads (CandidateTask, CritiqueTask) as they are. Naming
    # the state as their input schema keeps LangGraph from turning the payload's keys into
    # channels of the graph state, which it would infer from the functions' annotations.
    builder.add_node("generate", make_generate(deps), input_schema=RefineState, destinations=("critique",))
    builder.add_node("critique", make_critique(deps), input_schema=RefineState)
    builder.add_node("decide", make_decide(deps))
    builder.add_node("refine", make_refine(deps))
    builder.add_node("review", make_review(deps))
    builder.add_node("finish", make_finish(deps))

    builder.add_edge(START, "start")
    builder.add_edge("start", "launch")
    builder.add_conditional_edges("launch", dispatch, ["generate"])
    builder.add_edge("critique", "decide")
    builder.add_conditional_edges("decide", route_after_decide)
    builder.add_conditional_edges("refine", route_after_refine)
    builder.add_conditional_edges("review", route_after_review)
    builder.add_edge("finish", END)
    return builder
