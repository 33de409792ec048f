"""The Generate-Critique-Refine agent: a LangGraph state machine around a generator and a critic.

Build the graph with :func:`build_graph`, compile it how you like, run it with
a :class:`RefineContext`::

    from gcr.agent import RefineContext, build_graph

    graph = build_graph(generator=my_generator, critic=my_critic).compile()
    result = await graph.ainvoke({"prompt": "a red cat on a blue chair"},
                                 context=RefineContext(max_rounds=3, candidates=2))
    result["summary"]["best"]["image"]   # path of the best image of the whole run
    result["best"]["image"]              # the same, relative to result["run_dir"]
"""

from gcr.agent.cache import ArtifactCache, critique_key, generation_key
from gcr.agent.context import RefineContext
from gcr.agent.graph import GRAPH_NAME, build_graph
from gcr.agent.guard import GuardVerdict, PromptGuard
from gcr.agent.nodes.review import ReviewAnswer
from gcr.agent.outcome import RefineResult
from gcr.agent.protocols import CriticProtocol
from gcr.agent.refiner import CritiqueRefiner, LLMRefiner, Proposal, Refiner, RefineRequest, make_refiner
from gcr.agent.run_folder import RunFolder
from gcr.agent.runner import RunOutcome, RunSpec, run_refine
from gcr.agent.state import CandidateRecord, RefineInput, RefineOutput, RefineState, RoundRecord
from gcr.agent.stopping import RoundOutcome, StopDecision, StoppingPolicy, StopReason, StopRules
from gcr.agent.tool import as_tool

__all__ = [
    "GRAPH_NAME",
    "ArtifactCache",
    "CandidateRecord",
    "CriticProtocol",
    "CritiqueRefiner",
    "GuardVerdict",
    "LLMRefiner",
    "PromptGuard",
    "Proposal",
    "RefineContext",
    "RefineInput",
    "RefineOutput",
    "RefineRequest",
    "RefineResult",
    "RefineState",
    "Refiner",
    "ReviewAnswer",
    "RoundOutcome",
    "RoundRecord",
    "RunFolder",
    "RunOutcome",
    "RunSpec",
    "StopDecision",
    "StopReason",
    "StopRules",
    "StoppingPolicy",
    "as_tool",
    "build_graph",
    "critique_key",
    "generation_key",
    "make_refiner",
    "run_refine",
]
